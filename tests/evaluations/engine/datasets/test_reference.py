"""Reference workloads bundled with scikit-learn or packaged with Garrison (no downloads)."""

from __future__ import annotations

import numpy as np
import pytest

from evaluations.engine.common import InvalidConfigError
from evaluations.engine.datasets import REFERENCE_DATASETS, load_reference
from evaluations.engine.datasets.reference import sms_spam_path


def test_digits_is_a_stratified_1257_540_split_in_the_unit_interval() -> None:
    train, test = load_reference("digits")
    assert (len(train), len(test)) == (1257, 540)
    assert train.input_shape == (1, 8, 8) and train.bounds == (0.0, 1.0)
    assert 0.0 <= train.x.min() and train.x.max() == 1.0 and test.x.max() <= 1.0
    train_share = np.bincount(train.y) / len(train)
    test_share = np.bincount(test.y) / len(test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)
    assert train.source_sha256 and train.sha256 != test.sha256


def test_digits_matches_scikit_learns_own_split() -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    _, x_test, y_train, _ = train_test_split(x, bunch.target, test_size=540, stratify=bunch.target, random_state=0)
    train, test = load_reference("digits")
    np.testing.assert_array_equal(test.x, x_test)
    np.testing.assert_array_equal(train.y, y_train)


def test_breast_cancer_is_scaled_with_train_statistics() -> None:
    train, test = load_reference("breast_cancer")
    assert (len(train), len(test)) == (398, 171)
    assert train.input_shape == test.input_shape == (30,)
    assert train.class_names == ("malignant", "benign")
    assert train.x.min() == 0.0 and train.x.max() == 1.0
    assert 0.0 <= test.x.min() and test.x.max() <= 1.0
    assert test.provenance["minmax"]["fitted_on"] == train.provenance["minmax"]["fitted_on"]


def test_sms_spam_has_all_5574_messages_with_both_labels() -> None:
    train, test = load_reference("sms_spam")
    assert len(train) + len(test) == 5574
    assert train.class_names == ("ham", "spam")
    assert np.bincount(np.concatenate([train.y, test.y])).tolist() == [4827, 747]
    assert train.vocabulary is test.vocabulary
    assert train.input_shape == test.input_shape == (64,)
    assert train.x.dtype == np.int64 and int(train.x.max()) < len(train.vocabulary)


def test_the_packaged_sms_spam_collection_carries_its_readme() -> None:
    readme = sms_spam_path().parent / "readme"
    assert "LICENSE" in readme.read_text(encoding="latin-1")


def test_reference_splits_are_deterministic_and_unknown_names_are_refused() -> None:
    assert load_reference("breast_cancer")[0].sha256 == load_reference("breast_cancer")[0].sha256
    assert set(REFERENCE_DATASETS) == {"digits", "breast_cancer", "sms_spam"}
    with pytest.raises(InvalidConfigError, match="digits, breast_cancer, sms_spam"):
        load_reference("mnist")
