"""Bad input raises named EngineInputError subclasses whose messages say what to fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluations.engine.common import EmptyDatasetError, EngineInputError
from evaluations.engine.poisoning import (
    BackdoorConfig,
    NotEnoughSamplesError,
    PatchTrigger,
    PoisonRateError,
    TokenTrigger,
    TriggerError,
    UnknownClassError,
    detect_poison,
    extract_features,
    poison_dataset,
    spectral_signatures,
)


@pytest.mark.parametrize("rate", [0, 1, 1.5, -0.1, float("nan"), "0.1"])
def test_a_poison_rate_outside_zero_one_is_refused(rate):
    with pytest.raises(PoisonRateError, match="strictly between 0 and 1"):
        BackdoorConfig(PatchTrigger(), target_class=1, poison_rate=rate)


def test_a_target_class_that_does_not_exist_is_refused(digits_subset):
    train, _ = digits_subset
    with pytest.raises(UnknownClassError, match=r"target_class 12 does not exist.*10 classes"):
        poison_dataset(train, BackdoorConfig(PatchTrigger(), target_class=12), seed=0)
    with pytest.raises(UnknownClassError):
        BackdoorConfig(PatchTrigger(), target_class=-1)


def test_a_trigger_that_does_not_fit_the_data_is_refused(digits_subset, toy_sms):
    train, _ = digits_subset
    with pytest.raises(TriggerError, match="does not fit 8x8"):
        poison_dataset(train, BackdoorConfig(PatchTrigger(size=9), target_class=1), seed=0)
    with pytest.raises(TriggerError, match="TokenTrigger for token ids"):
        poison_dataset(toy_sms.train, BackdoorConfig(PatchTrigger(), target_class=0), seed=0)
    with pytest.raises(TriggerError, match="outside the vocabulary"):
        TokenTrigger.from_phrase("zzqx", toy_sms.train.vocabulary)


def test_asking_for_more_poison_than_source_samples_is_refused(digits_subset):
    train, _ = digits_subset
    config = BackdoorConfig(PatchTrigger(), target_class=1, source_classes=(0,), poison_rate=0.9)
    with pytest.raises(NotEnoughSamplesError, match="lower poison_rate"):
        poison_dataset(train, config, seed=0)


def test_empty_data_is_refused():
    with pytest.raises(EmptyDatasetError, match="no samples"):
        spectral_signatures(np.zeros((0, 4)), np.zeros(0, dtype=np.int64))
    with pytest.raises(EmptyDatasetError):
        extract_features(torch.nn.Linear(3, 2), torch.zeros(0, 3))


def test_mismatched_labels_and_non_finite_features_are_refused():
    with pytest.raises(EngineInputError, match="one per feature row"):
        detect_poison(np.zeros((5, 3)), np.zeros(4, dtype=np.int64))
    features = np.zeros((5, 3))
    features[2, 1] = np.nan
    with pytest.raises(EngineInputError, match="NaN"):
        detect_poison(features, np.zeros(5, dtype=np.int64))
