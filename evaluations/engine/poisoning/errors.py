"""Named input errors of the poisoning engine; each message says what to fix."""

from __future__ import annotations

from typing import Any

from evaluations.engine.common import Cancelled, EngineInputError, InvalidConfigError, LabelOutOfRangeError

__all__ = [
    "DetectionCancelled",
    "FeatureLayerNotFoundError",
    "NotEnoughSamplesError",
    "PoisonRateError",
    "TriggerError",
    "UnknownClassError",
]


class PoisonRateError(InvalidConfigError):
    """A poison rate is not a number strictly between 0 and 1."""


class UnknownClassError(LabelOutOfRangeError):
    """A target or source class is not one of the dataset's classes."""


class TriggerError(InvalidConfigError):
    """A trigger does not fit the data (patch larger than the image, token ids outside the vocabulary, ...)."""


class NotEnoughSamplesError(InvalidConfigError):
    """The data has too few samples of a class for the requested poisoning or detection."""


class FeatureLayerNotFoundError(EngineInputError):
    """A feature layer name does not exist in the model, or no penultimate ``nn.Linear`` could be found."""


class DetectionCancelled(Cancelled):  # noqa: N818 - a Cancelled, read as a state
    """Detection was cancelled; ``partial`` holds the per-class decisions finished so far."""

    def __init__(self, message: str, partial: Any) -> None:
        super().__init__(message)
        self.partial = partial
