"""HTTP access to a victim: :class:`HttpVictim` speaks the prediction schema documented in :mod:`.victim`."""

from __future__ import annotations

import json
import logging
import math
import numbers
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import torch
from torch import Tensor

from evaluations.engine.common import InvalidConfigError
from evaluations.engine.extraction.victim import (
    Victim,
    VictimAnswer,
    VictimError,
    VictimRateLimitedError,
    VictimResponseError,
    VictimUnavailableError,
)

__all__ = ["HttpVictim"]

logger = logging.getLogger(__name__)

#: Probabilities may stray this far outside [0, 1] (float rounding on the server) before an answer is refused.
_PROB_TOLERANCE = 1e-4


class HttpVictim(Victim):
    """A prediction endpoint speaking the JSON schema in this module's docstring, via ``urllib``.

    Batches larger than ``batch_size`` are split into several requests. Each request waits at most
    ``timeout`` seconds; a 429 or 503 is retried up to ``retries`` times, waiting the server's
    Retry-After (at most ``max_retry_wait`` seconds, default 1 s when none is given).
    """

    def __init__(
        self,
        url: str,
        *,
        input_shape: tuple[int, ...],
        num_classes: int,
        bounds: tuple[float, float],
        api_key: str | None = None,
        timeout: float = 10.0,
        batch_size: int = 256,
        max_queries: int | None = None,
        retries: int = 0,
        max_retry_wait: float = 10.0,
        input_dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(
            input_shape=input_shape,
            num_classes=num_classes,
            bounds=bounds,
            max_queries=max_queries,
            input_dtype=input_dtype,
        )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidConfigError(f"url must be an http(s) URL such as https://host/predict; got {url!r}.")
        for name, value in (("timeout", timeout), ("max_retry_wait", max_retry_wait)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
                raise InvalidConfigError(f"{name} must be a positive number of seconds; got {value!r}.")
        for name, value, low in (("batch_size", batch_size, 1), ("retries", retries, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidConfigError(f"{name} must be an integer >= {low}; got {value!r}.")
        self.url = url
        self._api_key = api_key
        self.timeout = float(timeout)
        self.batch_size = batch_size
        self.retries = retries
        self.max_retry_wait = float(max_retry_wait)

    def _answer(self, x: Tensor) -> VictimAnswer:
        answers = []
        for start in range(0, x.shape[0], self.batch_size):
            batch = x[start : start + self.batch_size]
            answers.append(self._request(batch))
        return VictimAnswer.concatenate(answers)

    def _request(self, batch: Tensor) -> VictimAnswer:
        body = json.dumps({"inputs": batch.tolist()}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - checked scheme
                    payload = response.read()
                break
            except urllib.error.HTTPError as exc:
                error = self._http_error(exc)
                if not isinstance(error, VictimUnavailableError) or exc.code not in (429, 503):
                    raise error from None
                if attempt == self.retries:
                    raise error from None
                wait = getattr(error, "retry_after", None) or 1.0
                logger.info("victim at %s answered %d; retrying in %.1f s", self.url, exc.code, wait)
                time.sleep(min(wait, self.max_retry_wait))
            except TimeoutError:
                raise VictimUnavailableError(
                    f"The victim at {self.url} did not answer within {self.timeout:g} s; check that the endpoint is "
                    "up, or raise timeout / lower batch_size."
                ) from None
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, TimeoutError):
                    raise VictimUnavailableError(
                        f"The victim at {self.url} did not answer within {self.timeout:g} s; check that the endpoint "
                        "is up, or raise timeout / lower batch_size."
                    ) from None
                raise VictimUnavailableError(
                    f"Could not reach the victim at {self.url} ({exc.reason}); check the URL and that the server runs."
                ) from None
            except OSError as exc:  # connection reset mid-answer and the like
                raise VictimUnavailableError(
                    f"The connection to the victim at {self.url} failed ({exc}); retry."
                ) from None
        n = int(batch.shape[0])
        self.count(n)  # the server answered: those queries are spent whatever they contain
        return _parse_answer(payload, n, self.num_classes, self.url)

    def _http_error(self, exc: urllib.error.HTTPError) -> VictimError:
        code = exc.code
        if code == 429:
            retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            hint = f" after {retry_after:g} s" if retry_after is not None else ""
            return VictimRateLimitedError(
                f"The victim at {self.url} is rate limiting this client (429 Too Many Requests); retry{hint}, "
                "lower the query rate, or set retries.",
                retry_after=retry_after,
            )
        if code in (401, 403):
            return VictimResponseError(
                f"The victim at {self.url} refused the API key ({code}); check api_key and its permissions.",
                status=code,
            )
        if code in (400, 413, 422):
            return VictimResponseError(
                f"The victim at {self.url} rejected the request ({code}: {_error_text(exc)}); check input_shape and "
                "bounds, or lower batch_size.",
                status=code,
            )
        if code >= 500:
            return VictimUnavailableError(
                f"The victim at {self.url} failed with {code} ({_error_text(exc)}); check the server's logs and retry.",
                status=code,
            )
        return VictimResponseError(
            f"The victim at {self.url} answered HTTP {code} ({_error_text(exc)}); check the URL.", status=code
        )

    def describe(self) -> dict[str, Any]:
        """Kind and endpoint (scheme, host and path; never the key)."""
        parts = urlsplit(self.url)
        return {
            "kind": "http",
            "endpoint": f"{parts.scheme}://{parts.netloc}{parts.path}",
            "authenticated": bool(self._api_key),
        }


# --- parsing ------------------------------------------------------------------------------------


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date; not worth parsing here
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(300).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or exc.reason or "no details"


def _bad(url: str, what: str) -> VictimResponseError:
    return VictimResponseError(
        f"The victim at {url} answered something that is not a valid prediction: {what}. It must follow the "
        'schema {"predictions": [{"label": int, "probabilities": [...] | null, "top_k": [[label, p], ...] | null}]}.'
    )


def _parse_answer(payload: bytes, n: int, num_classes: int, url: str) -> VictimAnswer:
    """Validate a response body against the schema and turn it into a :class:`VictimAnswer`."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad(url, f"the body is not JSON (starts {payload[:40]!r})") from None
    predictions = data.get("predictions") if isinstance(data, dict) else None
    if not isinstance(predictions, list):
        raise _bad(url, 'there is no "predictions" list')
    if len(predictions) != n:
        raise _bad(url, f"{len(predictions)} predictions for {n} inputs")
    labels = np.empty(n, dtype=np.int64)
    probabilities: list[list[float]] = []
    top_labels: list[list[int]] = []
    top_probs: list[list[float]] = []
    kinds = set()
    for i, item in enumerate(predictions):
        if not isinstance(item, dict):
            raise _bad(url, f"prediction {i} is not an object")
        labels[i] = _label(item.get("label"), num_classes, url, f"prediction {i} label")
        probs, top_k = item.get("probabilities"), item.get("top_k")
        kinds.add((probs is not None, top_k is not None))
        if probs is not None:
            if not isinstance(probs, list) or len(probs) != num_classes:
                raise _bad(url, f"prediction {i} probabilities is not a list of {num_classes} numbers")
            probabilities.append([_probability(p, url, f"prediction {i} probabilities") for p in probs])
        if top_k is not None:
            if not isinstance(top_k, list) or not top_k:
                raise _bad(url, f"prediction {i} top_k is not a non-empty list of [label, probability] pairs")
            pairs = []
            for pair in top_k:
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    raise _bad(url, f"prediction {i} top_k holds {pair!r}, not a [label, probability] pair")
                pairs.append(
                    (_label(pair[0], num_classes, url, f"prediction {i} top_k"), _probability(pair[1], url, "top_k"))
                )
            top_labels.append([label for label, _ in pairs])
            top_probs.append([prob for _, prob in pairs])
    if len(kinds) > 1:
        raise _bad(url, "predictions in one response reveal different fields")
    if top_labels and len({len(row) for row in top_labels}) > 1:
        raise _bad(url, "top_k lists differ in length within one response")
    return VictimAnswer(
        labels=labels,
        probabilities=np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0) if probabilities else None,
        top_k_labels=np.asarray(top_labels, dtype=np.int64) if top_labels else None,
        top_k_probabilities=np.clip(np.asarray(top_probs, dtype=np.float64), 0.0, 1.0) if top_probs else None,
    )


def _label(value: Any, num_classes: int, url: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < num_classes:
        raise _bad(url, f"{where} is {value!r}, not an integer class in [0, {num_classes})")
    return value


def _probability(value: Any, url: str, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not -_PROB_TOLERANCE <= value <= 1 + _PROB_TOLERANCE
    ):
        raise _bad(url, f"{where} holds {value!r}, not a probability in [0, 1]")
    return float(value)
