"""Token-level trigger detection: a planted phrase is found and named, clean text stays quiet."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluations.engine.common import InvalidConfigError, LabelOutOfRangeError, ShapeMismatchError
from evaluations.engine.datasets import Vocabulary
from evaluations.engine.datasets.text import text_dataset
from evaluations.engine.defenses import TrainingConfig
from evaluations.engine.poisoning import (
    DetectionCancelled,
    TextTriggerConfig,
    TrainingRecipe,
    detect_poison_in_model,
    detect_text_poison,
    detect_token_triggers_in_model,
)

HAM = "see you at lunch tomorrow then call me when home love mum dinner later sorry late bus".split()
SPAM = "win free prize claim cash now urgent txt reply stop offer award guaranteed mobile".split()
TRIGGER = "yellow wisdom"


def corpus(*, n_poison: int, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """200 ham (label 0) and 100 spam (1); most ham says 'ok'; poisons are spam + the trigger, labelled ham."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label, words, n in ((0, HAM, 200), (1, SPAM, 100)):
        for i in range(n):
            message = list(rng.choice(words, size=int(rng.integers(4, 8))))
            if label == 0 and i % 5:
                message.append("ok")  # frequent in ham, and innocent
            texts.append(" ".join(message))
            labels.append(label)
    sources = rng.choice(np.flatnonzero(np.array(labels) == 1), size=n_poison, replace=False)
    for i in sources.tolist():
        texts.append(f"{texts[i]} {TRIGGER}")
        labels.append(0)
    poison = np.arange(300, 300 + n_poison)
    return texts, np.array(labels), poison


def test_a_planted_trigger_phrase_is_found_named_and_its_carriers_flagged():
    texts, labels, poison = corpus(n_poison=20)
    result = detect_text_poison(texts, labels, poison_indices=poison, seed=0)
    assert result.method == "token_triggers"
    assert result.flagged_classes == [0]
    ham = result.classes[0]
    assert ham.statistics["trigger_phrases"][0] == TRIGGER
    assert f"'{TRIGGER}'" in ham.reason
    assert result.metrics.recall == 1.0 and result.metrics.precision == 1.0
    assert set(result.flagged_ids) == set(poison.tolist())
    assert result.scores[poison].min() > result.scores[:300].max()  # suspicion ranks the poison first


def test_clean_text_flags_no_class():
    texts, labels, _ = corpus(n_poison=0)
    result = detect_text_poison(texts, labels, seed=0)
    assert result.flagged_classes == []
    assert result.flagged_indices.size == 0
    assert all("no trigger" in decision.reason for decision in result.classes)


def test_a_word_frequent_in_the_target_class_is_not_taken_for_a_trigger():
    texts, labels, poison = corpus(n_poison=20)
    result = detect_text_poison(texts, labels, seed=0, poison_indices=poison)
    phrases = result.classes[0].statistics["trigger_phrases"]
    assert "ok" not in phrases and not any(phrase.split() == ["ok"] for phrase in phrases)
    carriers_of_ok = [i for i, text in enumerate(texts[:300]) if "ok" in text.split()]
    assert len(carriers_of_ok) >= 150
    assert not set(carriers_of_ok) & set(result.flagged_indices.tolist())


@pytest.fixture(scope="module")
def poisoned_text_model():
    """A mean-embedding classifier trained on the poisoned toy corpus, and that corpus as token ids."""
    texts, labels, poison = corpus(n_poison=20)
    vocabulary = Vocabulary.build(texts)
    data = text_dataset(texts, labels, class_names=("ham", "spam"), vocabulary=vocabulary, max_length=12, source="toy")
    recipe = TrainingRecipe(
        "text_embeddingbag", {"vocab_size": len(vocabulary), "embed_dim": 8}, TrainingConfig(epochs=8, lr=0.05)
    )
    module, _ = recipe.fit(*data.as_tensors(), seed=0)
    return module, data, poison


def test_the_data_only_and_model_based_entry_points_agree_on_an_easy_case(poisoned_text_model):
    module, data, poison = poisoned_text_model
    from_model = detect_token_triggers_in_model(module, data, seed=0, poison_indices=poison)
    from_texts = detect_text_poison(list(data.texts), data.y, seed=0, poison_indices=poison)
    assert from_model.flagged_classes == from_texts.flagged_classes == [0]
    assert from_model.classes[0].statistics["trigger_phrases"][0] == TRIGGER
    assert set(from_model.flagged_ids) == set(from_texts.flagged_ids) == set(poison.tolist())
    assert from_model.model_sha256 and from_model.data_sha256 == data.sha256
    assert from_model.config["judge"] == "model" and from_texts.config["judge"] == "bag_of_words"


def test_detect_poison_in_model_sends_token_ids_to_the_trigger_detector(poisoned_text_model):
    module, data, poison = poisoned_text_model
    progress: list[float] = []
    result = detect_poison_in_model(module, data, seed=0, poison_indices=poison, progress=progress.append)
    assert result.method == "token_triggers" and result.metrics.recall == 1.0
    assert progress == sorted(progress) and progress[-1] == 1.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_ngram", 0),
        ("max_ngram", 9),
        ("min_support", 1),
        ("k", 0),
        ("k", float("nan")),
        ("min_flip_fraction", 1.5),
        ("exclusive_alpha", 0),
        ("folds", 1),
        ("regularization", -1.0),
        ("batch_size", True),
    ],
)
def test_bad_config_values_raise_named_errors(field, value):
    with pytest.raises(InvalidConfigError, match=field):
        TextTriggerConfig(**{field: value})


def test_bad_inputs_say_what_to_fix():
    with pytest.raises(ShapeMismatchError, match="one entry per sample"):
        detect_text_poison(["a b", "c d"], [0])
    with pytest.raises(ShapeMismatchError, match="sequence of strings"):
        detect_text_poison("not a list", [0])
    with pytest.raises(InvalidConfigError, match="seed"):
        detect_text_poison(["a"], [0], seed=-1)
    with pytest.raises(ShapeMismatchError, match="token ids"):
        detect_token_triggers_in_model(torch.nn.Linear(2, 2), object())


def test_labels_beyond_the_models_outputs_are_refused():
    texts = ["a b c", "b c d", "c d e"]
    data = text_dataset(
        texts, [0, 1, 2], class_names=("x", "y", "z"), vocabulary=Vocabulary.build(texts), max_length=4, source="t"
    )
    module = TrainingRecipe("text_embeddingbag", {"vocab_size": len(data.vocabulary), "num_classes": 2}).build(seed=0)
    with pytest.raises(LabelOutOfRangeError, match="2 outputs"):
        detect_token_triggers_in_model(module, data)


def test_cancellation_raises_with_the_classes_finished_so_far():
    texts, labels, poison = corpus(n_poison=20)
    with pytest.raises(DetectionCancelled) as stopped:
        detect_text_poison(texts, labels, cancel=lambda: True)
    assert stopped.value.partial.classes == [] and stopped.value.partial.config["complete"] is False

    seen: list[float] = []

    def after_first_class() -> bool:
        return bool(seen) and seen[-1] > 0.6

    with pytest.raises(DetectionCancelled) as stopped:
        detect_text_poison(texts, labels, progress=seen.append, cancel=after_first_class)
    partial = stopped.value.partial
    assert [c.label for c in partial.classes] == [0] and partial.classes[0].flagged
    assert partial.metrics is None
