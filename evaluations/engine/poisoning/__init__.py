"""Data poisoning and backdoors: simulate an attack, detect the poison, remediate and retrain.

* :func:`simulate_backdoor` poisons a training set with a :class:`PatchTrigger` (BadNets),
  :class:`BlendTrigger` (Chen et al. 2017) or :class:`TokenTrigger` (a phrase in token ids), trains a
  :class:`TrainingRecipe` on it and reports clean accuracy and attack success.
* :func:`extract_features` reads penultimate activations (the input of the last ``nn.Linear``).
* :func:`spectral_signatures` (Tran et al. 2018) and :func:`activation_clustering` (Chen et al. 2018)
  judge each class and flag samples; :func:`detect_poison` runs and combines both.
* :func:`detect_text_poison` (raw texts, no model) and :func:`detect_token_triggers_in_model` (token ids and
  the model trained on them) find trigger words and phrases by leave-the-word-out reclassification
  (ONION, BKI); :func:`detect_poison_in_model` uses the latter for text data.
* :func:`detect_patch_triggers` finds image patch triggers in input space (trigger reconstruction as in
  Neural Cleanse, confirmed by exclusionary reclassification); :func:`detect_poison_in_model` uses it for
  float images by default.
* :func:`remediate` drops or relabels flagged samples, retrains and re-measures.
"""

from __future__ import annotations

from evaluations.engine.poisoning.activation_clustering import ActivationClusteringConfig, activation_clustering
from evaluations.engine.poisoning.detect import DetectionConfig, detect_poison, detect_poison_in_model
from evaluations.engine.poisoning.errors import (
    DetectionCancelled,
    FeatureLayerNotFoundError,
    NotEnoughSamplesError,
    PoisonRateError,
    TriggerError,
    UnknownClassError,
)
from evaluations.engine.poisoning.features import (
    FeatureExtraction,
    extract_features,
    find_penultimate_layer,
    layer_names,
)
from evaluations.engine.poisoning.input_space import InputSpaceConfig, detect_patch_triggers
from evaluations.engine.poisoning.recipe import TrainingRecipe, module_sha256
from evaluations.engine.poisoning.remediate import RemediationResult, remediate
from evaluations.engine.poisoning.results import ClassDecision, DetectionMetrics, DetectionResult
from evaluations.engine.poisoning.simulate import (
    BackdoorConfig,
    BackdoorMetrics,
    BackdoorSimulationResult,
    PoisonedDataset,
    evaluate_backdoor,
    poison_dataset,
    simulate_backdoor,
)
from evaluations.engine.poisoning.spectral import SpectralSignatureConfig, spectral_signatures
from evaluations.engine.poisoning.text_triggers import (
    TextTriggerConfig,
    detect_text_poison,
    detect_token_triggers_in_model,
)
from evaluations.engine.poisoning.triggers import BlendTrigger, PatchTrigger, TokenTrigger

__all__ = [
    "ActivationClusteringConfig",
    "BackdoorConfig",
    "BackdoorMetrics",
    "BackdoorSimulationResult",
    "BlendTrigger",
    "ClassDecision",
    "DetectionCancelled",
    "DetectionConfig",
    "DetectionMetrics",
    "DetectionResult",
    "FeatureExtraction",
    "FeatureLayerNotFoundError",
    "InputSpaceConfig",
    "NotEnoughSamplesError",
    "PatchTrigger",
    "PoisonRateError",
    "PoisonedDataset",
    "RemediationResult",
    "SpectralSignatureConfig",
    "TextTriggerConfig",
    "TokenTrigger",
    "TrainingRecipe",
    "TriggerError",
    "UnknownClassError",
    "activation_clustering",
    "detect_poison",
    "detect_patch_triggers",
    "detect_poison_in_model",
    "detect_text_poison",
    "detect_token_triggers_in_model",
    "evaluate_backdoor",
    "extract_features",
    "find_penultimate_layer",
    "layer_names",
    "module_sha256",
    "poison_dataset",
    "remediate",
    "simulate_backdoor",
    "spectral_signatures",
]
