"""Reference workloads that need no download: digits (images), breast cancer (tabular), SMS spam (text)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from importlib.resources.abc import Traversable

import numpy as np

from evaluations.engine.common import InvalidConfigError, sha256_arrays, sha256_bytes
from evaluations.engine.datasets.base import Dataset, DatasetSplit, stratified_split
from evaluations.engine.datasets.tabular import minmax_scale
from evaluations.engine.datasets.text import Vocabulary, label_indices, parse_labelled_texts, text_dataset

__all__ = [
    "REFERENCE_DATASETS",
    "SMS_SPAM_MAX_LENGTH",
    "SMS_SPAM_MIN_FREQUENCY",
    "load_reference",
    "sms_spam_path",
]

#: Test-set sizes (an int is a count, a float a fraction, as in ``train_test_split``).
DIGITS_TEST_SIZE = 540
BREAST_CANCER_TEST_SIZE = 0.3
SMS_SPAM_TEST_SIZE = 0.3
#: Tokenizer settings for SMS spam: words seen at least twice in train; 64 tokens cover >99% of messages.
SMS_SPAM_MIN_FREQUENCY = 2
SMS_SPAM_MAX_LENGTH = 64

_PACKAGE = "evaluations.engine.datasets"
_SMS_FILE = "SMSSpamCollection"


def _sklearn_source_sha256(filename: str, fallback: tuple[np.ndarray, ...]) -> str:
    """SHA-256 of scikit-learn's bundled data file, or of the raw arrays if the file has moved."""
    try:
        return sha256_bytes((resources.files("sklearn.datasets") / "data" / filename).read_bytes())
    except (FileNotFoundError, ModuleNotFoundError, OSError):
        return sha256_arrays(*fallback)


def _digits(seed: int) -> DatasetSplit:
    """scikit-learn's 1,797 8x8 digits as (N, 1, 8, 8) in [0, 1]; 1,257 train / 540 test, stratified."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    y = bunch.target.astype(np.int64)
    full = Dataset(
        x=x,
        y=y,
        class_names=tuple(str(c) for c in bunch.target_names),
        bounds=(0.0, 1.0),
        source="sklearn.datasets.load_digits",
        source_sha256=_sklearn_source_sha256("digits.csv.gz", (bunch.images, bunch.target)),
        provenance={"reference": "digits", "scaling": "pixel / 16"},
    )
    return stratified_split(full, test_size=DIGITS_TEST_SIZE, seed=seed)


def _breast_cancer(seed: int) -> DatasetSplit:
    """Wisconsin breast cancer, 30 features min-max scaled to [0, 1] with train statistics (test clipped)."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    full = Dataset(
        x=bunch.data.astype(np.float32),
        y=bunch.target.astype(np.int64),
        class_names=tuple(str(c) for c in bunch.target_names),
        bounds=(float(bunch.data.min()), float(bunch.data.max())),
        source="sklearn.datasets.load_breast_cancer",
        source_sha256=_sklearn_source_sha256("breast_cancer.csv", (bunch.data, bunch.target)),
        provenance={"reference": "breast_cancer", "features": list(bunch.feature_names)},
    )
    train, test = stratified_split(full, test_size=BREAST_CANCER_TEST_SIZE, seed=seed)
    return DatasetSplit(*minmax_scale(train, test))


def sms_spam_path() -> Traversable:
    """The packaged copy of the SMS Spam Collection v.1 (its ``readme`` beside it holds the terms of use)."""
    return resources.files(_PACKAGE) / "data" / "sms_spam_collection" / _SMS_FILE


def _sms_spam(seed: int) -> DatasetSplit:
    """SMS Spam Collection v.1: 5,574 messages, ham=0 / spam=1; vocabulary built on the train part only."""
    from sklearn.model_selection import train_test_split

    data = sms_spam_path().read_bytes()
    labels, texts = parse_labelled_texts(data.decode("utf-8"), _SMS_FILE)
    y, names = label_indices(labels, ("ham", "spam"), _SMS_FILE)
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=SMS_SPAM_TEST_SIZE, stratify=y, random_state=seed
    )
    vocabulary = Vocabulary.build((texts[i] for i in train_idx), min_frequency=SMS_SPAM_MIN_FREQUENCY)
    parts = []
    for part, index in (("train", train_idx), ("test", test_idx)):
        parts.append(
            text_dataset(
                [texts[i] for i in index],
                y[index],
                class_names=names,
                vocabulary=vocabulary,
                max_length=SMS_SPAM_MAX_LENGTH,
                source="garrison:sms_spam_collection_v1",
                source_sha256=sha256_bytes(data),
                provenance={
                    "reference": "sms_spam",
                    "licence": "see data/sms_spam_collection/readme (SMS Spam Collection v.1 terms)",
                    "split": {"test_size": SMS_SPAM_TEST_SIZE, "seed": seed, "stratified": True, "part": part},
                    "min_frequency": SMS_SPAM_MIN_FREQUENCY,
                },
            )
        )
    return DatasetSplit(*parts)


_LOADERS: dict[str, Callable[[int], DatasetSplit]] = {
    "digits": _digits,
    "breast_cancer": _breast_cancer,
    "sms_spam": _sms_spam,
}

REFERENCE_DATASETS: tuple[str, ...] = tuple(_LOADERS)


def load_reference(name: str, *, seed: int = 0) -> DatasetSplit:
    """A reference workload's stratified ``(train, test)`` split; ``seed`` is the split's ``random_state``.

    * ``'digits'``: images ``(N, 1, 8, 8)`` in [0, 1], 10 classes, 1,257 train / 540 test.
    * ``'breast_cancer'``: 30 tabular features in [0, 1] (train min-max), 2 classes, 398 / 171.
    * ``'sms_spam'``: token ids ``(N, 64)`` for ``text_embeddingbag``, ham/spam, 3,901 / 1,673.
    """
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise InvalidConfigError(
            f"Unknown reference dataset {name!r}; choose one of {', '.join(REFERENCE_DATASETS)}."
        ) from None
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidConfigError(f"seed must be a non-negative integer; got {seed!r}.")
    return loader(seed)
