"""The skops loader end to end through the real scanner: allow-listed tree state loads, unknown types do not."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io as sio
import torch
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from evaluations.engine.models import load_skops
from evaluations.engine.scanning import UnsafeModelFile


class CustomLogisticRegression(LogisticRegression):
    """A user-defined estimator type that neither skops nor Garrison trusts."""


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((80, 4))
    return x, (x[:, 0] + x[:, 1] > 1).astype(np.int64)


@pytest.mark.parametrize(
    "estimator",
    [
        RandomForestClassifier(n_estimators=3, random_state=0),
        GradientBoostingClassifier(n_estimators=3, random_state=0),
    ],
    ids=["random_forest", "gradient_boosting"],
)
def test_a_skops_tree_ensemble_loads_through_the_real_scan(tmp_path, estimator) -> None:
    x, y = _data()
    estimator.fit(x, y)
    path = tmp_path / "trees.skops"
    sio.dump(estimator, path)
    classifier = load_skops(path, input_shape=(4,), bounds=(0.0, 1.0), num_classes=2)
    assert torch.equal(
        classifier.predict(torch.as_tensor(x, dtype=torch.float32)), torch.as_tensor(estimator.predict(x))
    )


def test_an_unknown_type_is_still_refused_by_the_real_scan(tmp_path) -> None:
    x, y = _data()
    path = tmp_path / "custom.skops"
    sio.dump(CustomLogisticRegression().fit(x, y), path)
    with pytest.raises(UnsafeModelFile) as caught:
        load_skops(path, input_shape=(4,), bounds=(0.0, 1.0), num_classes=2)
    assert "CustomLogisticRegression" in str(caught.value)
