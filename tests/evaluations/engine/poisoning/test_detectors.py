"""Spectral signatures and activation clustering on synthetic features with and without a planted cluster."""

from __future__ import annotations

import numpy as np
import pytest

from evaluations.engine.common import Cancelled
from evaluations.engine.poisoning import (
    ActivationClusteringConfig,
    DetectionCancelled,
    DetectionConfig,
    SpectralSignatureConfig,
    activation_clustering,
    detect_poison,
    spectral_signatures,
)

from .conftest import synthetic_features

DETECTORS = [
    pytest.param(lambda f, y, **kw: spectral_signatures(f, y, **kw), id="spectral"),
    pytest.param(lambda f, y, **kw: activation_clustering(f, y, **kw), id="clustering"),
    pytest.param(lambda f, y, **kw: detect_poison(f, y, **kw), id="union"),
    pytest.param(lambda f, y, **kw: detect_poison(f, y, DetectionConfig(method="consensus"), **kw), id="consensus"),
]


@pytest.mark.parametrize("detect", DETECTORS)
def test_detector_finds_a_planted_cluster_and_flags_only_its_class(detect, planted):
    features, labels, poison = planted
    result = detect(features, labels, poison_indices=poison)
    assert result.flagged_classes == [1]
    assert result.metrics.recall >= 0.95
    assert result.metrics.precision >= 0.9


@pytest.mark.parametrize("detect", DETECTORS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_class_is_flagged_at_zero_percent_poison(detect, seed):
    features, labels, _ = synthetic_features(seed=seed)
    result = detect(features, labels, poison_indices=[])
    assert result.flagged_classes == []
    assert result.flagged_indices.size == 0
    assert result.metrics.precision == 1.0


def test_detection_result_records_provenance_and_per_class_confusion(planted):
    features, labels, poison = planted
    result = detect_poison(features, labels, poison_indices=poison, sample_ids=[f"row-{i}" for i in range(len(labels))])
    record = result.to_dict()
    assert record["flagged_ids"][0].startswith("row-")
    assert record["features_sha256"] and record["labels_sha256"]
    assert set(record["library_versions"]) >= {"torch", "numpy", "sklearn"}
    assert set(record["components"]) == {"spectral_signatures", "activation_clustering"}
    per_class = {c["label"]: c for c in record["metrics"]["per_class"]}
    assert per_class[1]["true_positives"] >= 29
    assert all(per_class[c]["false_positives"] == 0 for c in (0, 2, 3, 4))


def test_scores_rank_the_poison_above_the_clean_samples_of_its_class(planted):
    features, labels, poison = planted
    scores = spectral_signatures(features, labels).scores
    clean_target = np.setdiff1d(np.flatnonzero(labels == 1), poison)
    assert np.median(scores[poison]) > np.percentile(scores[clean_target], 95)


def test_raw_space_is_the_papers_spectral_signature_and_still_flags_a_strong_cluster():
    features, labels, poison = synthetic_features(n_poison=60)
    features[poison] += 6.0 * np.eye(1, features.shape[1], 5)[0]
    result = spectral_signatures(features, labels, SpectralSignatureConfig(space="raw"), poison_indices=poison)
    assert result.flagged_classes == [1]
    assert result.metrics.recall >= 0.95


def test_progress_reaches_one_and_cancellation_keeps_the_classes_done(planted):
    features, labels, _ = planted
    seen: list[float] = []
    activation_clustering(features, labels, ActivationClusteringConfig(n_init=2), progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    calls = iter([False, False, True])
    with pytest.raises(Cancelled) as caught:
        spectral_signatures(features, labels, should_cancel=lambda: next(calls))
    assert isinstance(caught.value, DetectionCancelled)
    assert [c.label for c in caught.value.partial.classes] == [0, 1]
