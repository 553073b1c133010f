"""Victim access: an in-process classifier and an HTTP endpoint on 127.0.0.1, with named errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from evaluations.engine.common import ShapeMismatchError
from evaluations.engine.extraction import (
    HttpVictim,
    LocalVictim,
    QueryBudgetExhaustedError,
    Rounding,
    VictimRateLimitedError,
    VictimResponseError,
    VictimUnavailableError,
)


def test_an_in_process_victim_answers_and_counts_queries(victim_model, digits):
    victim = LocalVictim(victim_model)
    answer = victim.query(digits[2][:10])
    assert answer.output == "probabilities" and answer.probabilities.shape == (10, 10)
    np.testing.assert_array_equal(answer.labels, victim_model.predict(digits[2][:10]).numpy())
    victim.query(digits[2][10:15])
    assert victim.queries_used == 15 and victim.requests_made == 2


def test_a_top_k_victim_reveals_k_classes_and_a_label_only_victim_reveals_labels(victim_model, digits):
    x = digits[2][:8]
    top = LocalVictim(victim_model, output="top_k", k=2).query(x)
    assert top.output == "top_k" and top.top_k_labels.shape == (8, 2) and top.probabilities is None
    np.testing.assert_array_equal(top.top_k_labels[:, 0], top.labels)
    np.testing.assert_allclose(top.soft_targets(10).sum(axis=1), 1.0)
    label = LocalVictim(victim_model, output="label").query(x)
    assert label.output == "label" and label.probabilities is None and label.top_k_labels is None


def test_a_defended_victim_answers_with_defended_probabilities(victim_model, digits):
    answer = LocalVictim(victim_model, defense=Rounding(decimals=1)).query(digits[2][:20])
    assert np.allclose(answer.probabilities * 10, np.round(answer.probabilities * 10))


def test_a_query_past_the_budget_raises_a_named_error_before_answering(victim_model, digits):
    victim = LocalVictim(victim_model, max_queries=5)
    victim.query(digits[2][:5])
    with pytest.raises(QueryBudgetExhaustedError, match="raise max_queries"):
        victim.query(digits[2][:1])
    with pytest.raises(QueryBudgetExhaustedError):
        LocalVictim(victim_model, max_queries=0).query(digits[2][:1])


def test_inputs_of_the_wrong_shape_are_refused(victim_model):
    with pytest.raises(ShapeMismatchError, match=r"\(N, 1, 8, 8\)"):
        LocalVictim(victim_model).query(torch.zeros(2, 64))


# --- HTTP -----------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    victim: LocalVictim
    seen: list[dict]

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "n": len(payload["inputs"])})
        if self.path == "/slow":
            time.sleep(1.0)
            return None
        if self.path == "/garbage":
            return self._send(200, b"<html>not json</html>")
        if self.path == "/500":
            return self._send(500, b'{"detail": "boom"}')
        if self.path == "/429":
            return self._send(429, b'{"detail": "slow down"}', {"Retry-After": "7"})
        if self.path == "/401":
            return self._send(401, b'{"detail": "bad token"}')
        answer = self.victim.query(torch.tensor(payload["inputs"]))
        predictions = [
            {
                "label": int(label),
                "probabilities": None,
                "top_k": [[int(c), float(p)] for c, p in zip(tl, tp, strict=True)],
            }
            for label, tl, tp in zip(answer.labels, answer.top_k_labels, answer.top_k_probabilities, strict=True)
        ]
        if self.path == "/short":
            predictions = predictions[:-1]
        return self._send(200, json.dumps({"predictions": predictions}).encode())


@pytest.fixture(scope="module")
def server(victim_model) -> Iterator[tuple[str, list[dict]]]:
    """A prediction endpoint on 127.0.0.1 serving the victim's top-3 (plus misbehaving paths)."""
    seen: list[dict] = []
    handler = type("Handler", (_Handler,), {"victim": LocalVictim(victim_model, output="top_k", k=3), "seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


def _http(url: str, **kwargs) -> HttpVictim:
    return HttpVictim(url, input_shape=(1, 8, 8), num_classes=10, bounds=(0.0, 1.0), **kwargs)


def test_the_http_victim_works_against_a_local_server(server, victim_model, digits):
    base, seen = server
    victim = _http(f"{base}/predict", api_key="secret-key", batch_size=4)
    answer = victim.query(digits[2][:10])
    assert answer.output == "top_k" and answer.top_k_labels.shape == (10, 3)
    np.testing.assert_array_equal(answer.labels, victim_model.predict(digits[2][:10]).numpy())
    assert victim.queries_used == 10 and victim.requests_made == 3
    assert [request["n"] for request in seen[-3:]] == [4, 4, 2]
    assert seen[-1]["auth"] == "Bearer secret-key"
    assert "secret-key" not in json.dumps(victim.describe())


def test_the_http_victim_raises_a_named_error_on_timeout(server, digits):
    with pytest.raises(VictimUnavailableError, match="did not answer within 0.2 s"):
        _http(f"{server[0]}/slow", timeout=0.2).query(digits[2][:1])


def test_the_http_victim_raises_a_named_error_on_garbage_json(server, digits):
    with pytest.raises(VictimResponseError, match="not JSON"):
        _http(f"{server[0]}/garbage").query(digits[2][:1])
    with pytest.raises(VictimResponseError, match="2 predictions for 3 inputs"):
        _http(f"{server[0]}/short").query(digits[2][:3])


def test_the_http_victim_raises_a_named_error_on_a_server_error(server, digits):
    with pytest.raises(VictimUnavailableError, match="failed with 500") as caught:
        _http(f"{server[0]}/500").query(digits[2][:1])
    assert caught.value.status == 500


def test_the_http_victim_raises_a_named_error_when_rate_limited(server, digits):
    with pytest.raises(VictimRateLimitedError, match="retry after 7 s") as caught:
        _http(f"{server[0]}/429").query(digits[2][:1])
    assert caught.value.retry_after == 7.0 and isinstance(caught.value, VictimUnavailableError)


def test_the_http_victim_says_to_check_the_key_on_401(server, digits):
    with pytest.raises(VictimResponseError, match="check api_key"):
        _http(f"{server[0]}/401", api_key="wrong").query(digits[2][:1])


def test_an_unreachable_victim_raises_a_named_error(digits):
    with pytest.raises(VictimUnavailableError, match="Could not reach"):
        _http("http://127.0.0.1:9/predict", timeout=0.5).query(digits[2][:1])
