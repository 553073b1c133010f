"""Extraction detection: PRADA flags synthetic query streams and passes benign ones; the ensemble reports when."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evaluations.engine.common import InvalidConfigError
from evaluations.engine.extraction import ExtractionConfig, JacobianAugmentation, LocalVictim, RandomQueries, extract
from evaluations.engine.extraction.detection import (
    DetectorConfig,
    ExtractionDetector,
    MonitoredVictim,
    QueryStream,
    evaluate_detector,
)

PRADA_ONLY = DetectorConfig(entropy_max_fraction=None, volume_max_queries=None, edit_max_change=None)
ATTACK = ExtractionConfig(budgets=(200,), transfer_attack=None, epochs=10, min_steps=100)


def _attack_stream(victim_model, digits, strategy, *, pool=None) -> QueryStream:
    """The queries an attacker sent, recorded by a monitored victim that flags nothing."""
    recorder = _Recorder(LocalVictim(victim_model))
    extract(
        recorder,
        strategy,
        digits[2][:20],
        digits[3][:20],
        ATTACK,
        pool=pool,
        evaluation_victim=LocalVictim(victim_model),
        seed=0,
    )
    return QueryStream(torch.cat(recorder.x), np.concatenate(recorder.probs))


class _Recorder(MonitoredVictim):
    def __init__(self, victim):
        super().__init__(victim, ExtractionDetector(PRADA_ONLY), "recorder")
        self.x, self.probs = [], []

    def _answer(self, x):
        answer = super()._answer(x)
        self.x.append(x)
        self.probs.append(answer.probabilities)
        return answer


def _benign(victim_model, digits, n_streams: int, length: int = 200) -> list[QueryStream]:
    x = digits[2]
    probs = LocalVictim(victim_model).probabilities(x)
    rng = np.random.default_rng(0)
    return [
        QueryStream(x[idx], probs[idx]) for idx in (rng.choice(len(x), length, replace=False) for _ in range(n_streams))
    ]


def test_prada_flags_a_jacobian_stream_and_passes_a_benign_one(victim_model, digits):
    jacobian = _attack_stream(victim_model, digits, JacobianAugmentation(seed_size=50), pool=digits[0])
    detector = ExtractionDetector(PRADA_ONLY)
    attacked = detector.observe_batch("attacker", jacobian.x, jacobian.probs)
    assert attacked.flagged and attacked.flagged_by == ("prada",) and attacked.first_flagged_at <= 200
    benign = _benign(victim_model, digits, 1)[0]
    passed = detector.observe_batch("benign", benign.x, benign.probs)
    assert not passed.flagged and passed.prada_w is not None and passed.prada_w > PRADA_ONLY.prada_threshold


def test_the_ensemble_reports_queries_until_detection_and_the_benign_false_positive_rate(victim_model, digits):
    attacks = {
        "random": _attack_stream(victim_model, digits, RandomQueries()),
        "jacobian": _attack_stream(victim_model, digits, JacobianAugmentation(seed_size=50), pool=digits[0]),
    }
    report = evaluate_detector(DetectorConfig(), attacks, _benign(victim_model, digits, 20))
    assert all(until is not None and until <= 200 for until in report.queries_until_detection.values())
    assert report.attack_flagged_by["random"] == ["entropy"]
    assert report.n_benign == 20 and report.benign_fpr == 0.0
    json.dumps(report.to_dict())


def test_a_monitored_victim_flags_its_client_during_an_extraction_run(victim_model, digits):
    monitored = MonitoredVictim(LocalVictim(victim_model), ExtractionDetector(), "client-7")
    extract(
        monitored,
        RandomQueries(),
        digits[2][:20],
        digits[3][:20],
        ATTACK,
        evaluation_victim=LocalVictim(victim_model),
        seed=0,
    )
    assert monitored.state.flagged and monitored.state.client_id == "client-7"
    assert monitored.state.queries == 200


def test_the_volume_monitor_flags_a_burst(victim_model, digits):
    detector = ExtractionDetector(DetectorConfig(volume_max_queries=5, volume_window=60.0))
    x = digits[2][:7]
    states = [detector.observe("c", x[i], label=0, timestamp=float(i)) for i in range(7)]
    assert not states[4].flagged and states[5].flagged and states[5].flagged_by == ("volume",)
    slow = ExtractionDetector(DetectorConfig(volume_max_queries=5, volume_window=60.0))
    assert not any(slow.observe("c", x[i], label=0, timestamp=100.0 * i).volume_flagged for i in range(7))


def test_label_only_answers_feed_prada_but_not_the_entropy_monitor(digits):
    detector = ExtractionDetector()
    state = detector.observe_batch("c", digits[2][:120], labels=digits[3][:120].numpy())
    assert state.uncertain_fraction is None and state.prada_w is not None


def test_invalid_detector_settings_are_named():
    with pytest.raises(InvalidConfigError, match="prada_threshold"):
        DetectorConfig(prada_threshold=1.5)
    with pytest.raises(InvalidConfigError, match="min_votes=2"):
        DetectorConfig(min_votes=2, volume_max_queries=None, entropy_max_fraction=None, edit_max_change=None)
