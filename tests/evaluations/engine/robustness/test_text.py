"""The greedy token attack on a tiny EmbeddingBag classifier with a planted decisive word."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from evaluations.engine.common import InvalidConfigError, seed_everything
from evaluations.engine.models import TorchClassifier, build
from evaluations.engine.robustness import TextAttackConfig, robustness_sweep, text_attack
from evaluations.engine.robustness.text import compact_tokens

VOCAB, LENGTH, DECISIVE = 40, 10, 7


def _sentences(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random right-padded sentences over ids 2..39; label 1 exactly when the decisive word 7 occurs."""
    lengths = torch.randint(4, LENGTH + 1, (n,), generator=generator)
    tokens = torch.randint(2, VOCAB, (n, LENGTH), generator=generator)
    tokens[tokens == DECISIVE] = 3
    labels = torch.randint(0, 2, (n,), generator=generator)
    spot = (torch.rand(n, generator=generator) * lengths).long()
    tokens[labels == 1, spot[labels == 1]] = DECISIVE
    tokens[torch.arange(LENGTH)[None, :] >= lengths[:, None]] = 0
    return tokens, labels


@pytest.fixture(scope="module")
def spam_model() -> tuple[TorchClassifier, torch.Tensor, torch.Tensor]:
    """text_embeddingbag trained until it relies on the decisive word, plus held-out sentences."""
    seed_everything(0)
    generator = torch.Generator().manual_seed(0)
    x, y = _sentences(600, generator)
    model = build("text_embeddingbag", vocab_size=VOCAB, embed_dim=8, num_classes=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    classifier = TorchClassifier(
        model, input_shape=(LENGTH,), bounds=(0, VOCAB - 1), num_classes=2, input_dtype=torch.int64
    )
    x_test, y_test = _sentences(64, generator)
    assert float((classifier.predict(x_test) == y_test).double().mean()) > 0.95
    return classifier, x_test, y_test


def test_text_attack_flips_sentences_by_removing_the_decisive_word(spam_model) -> None:
    classifier, x, y = spam_model
    result = text_attack(classifier, x, y, TextAttackConfig(max_edits=1), seed=0)
    positive = (y == 1) & (classifier.predict(x) == 1)
    assert positive.sum() > 10
    assert bool(result.success[positive].all())
    assert not bool((result.adversarial[positive] == DECISIVE).any())
    assert torch.equal(result.success, classifier.predict(result.adversarial) != y)


def test_text_attack_respects_the_edit_budget(spam_model) -> None:
    classifier, x, y = spam_model
    for budget in (0, 1, 2):
        result = text_attack(classifier, x, y, TextAttackConfig(max_edits=budget), seed=0)
        assert int(result.edits.max()) <= budget
        changed = (result.adversarial != x).sum(dim=1)
        assert bool((changed[result.edits == 0] == 0).all())
    unchanged = text_attack(classifier, x, y, TextAttackConfig(max_edits=0), seed=0)
    assert torch.equal(unchanged.adversarial, x)
    assert bool((unchanged.queries == 1).all())


def test_text_attack_counts_the_queries_it_spends(spam_model) -> None:
    classifier, x, y = spam_model
    result = text_attack(classifier, x, y, TextAttackConfig(max_edits=2, n_candidates=3), seed=0)
    present = (x != 0).sum(dim=1)
    assert bool((result.queries >= 1 + present).all())  # the clean query plus one leave-one-out probe per token
    assert bool((result.queries <= 1 + present + present * 4).all())  # at most 3 substitutes + 1 deletion per token


def test_a_fixed_candidate_set_can_plant_the_decisive_word(spam_model) -> None:
    classifier, x, y = spam_model
    negative = (y == 0) & (classifier.predict(x) == 0)
    config = TextAttackConfig(max_edits=1, candidate_ids=(DECISIVE, 5), allow_deletion=False)
    result = text_attack(classifier, x[negative], y[negative], config, seed=0)
    assert bool(result.success.all())
    assert bool(((result.adversarial == DECISIVE).sum(dim=1) == 1).all())


def test_adversarial_sentences_stay_right_padded_token_ids(spam_model) -> None:
    classifier, x, y = spam_model
    result = text_attack(classifier, x, y, TextAttackConfig(max_edits=3), seed=0)
    tokens = result.adversarial
    assert tokens.dtype == torch.int64 and tokens.shape == x.shape
    assert int(tokens.min()) >= 0 and int(tokens.max()) < VOCAB
    assert torch.equal(compact_tokens(tokens), tokens)
    deleted = (x != 0).sum(dim=1) - (tokens != 0).sum(dim=1)
    assert bool((deleted <= result.edits).all())


def test_compact_tokens_moves_padding_right_and_keeps_order() -> None:
    tokens = torch.tensor([[5, 0, 6, 0, 7], [0, 0, 3, 0, 0]])
    assert compact_tokens(tokens).tolist() == [[5, 6, 7, 0, 0], [3, 0, 0, 0, 0]]


def test_a_model_without_embeddings_needs_a_candidate_set() -> None:
    class Counts(nn.Module):
        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            hits = (tokens == DECISIVE).float().sum(dim=1, keepdim=True)
            return torch.cat([1 - hits, hits], dim=1)

    classifier = TorchClassifier(
        Counts(), input_shape=(4,), bounds=(0, VOCAB - 1), num_classes=2, input_dtype=torch.int64
    )
    x, y = torch.tensor([[DECISIVE, 3, 4, 0]]), torch.tensor([1])
    with pytest.raises(InvalidConfigError, match="candidate_ids"):
        text_attack(classifier, x, y, TextAttackConfig(allow_deletion=False), seed=0)
    result = text_attack(classifier, x, y, TextAttackConfig(candidate_ids=(3,), allow_deletion=False), seed=0)
    assert result.adversarial.tolist() == [[3, 3, 4, 0]] and bool(result.success.all())


@pytest.mark.parametrize("changes", [{"max_edits": -1}, {"n_candidates": 1.5}, {"candidate_ids": ()}])
def test_text_attack_config_rejects_invalid_settings(changes: dict) -> None:
    with pytest.raises(InvalidConfigError):
        TextAttackConfig(**changes)


def test_text_sweep_reports_edits_and_queries_per_budget(spam_model) -> None:
    classifier, x, y = spam_model
    result = robustness_sweep(classifier, x, y, attack="text", epsilons=[0, 1, 2], seed=0)
    assert result.attack == "text" and result.norm == "edits"
    accuracies = result.robust_accuracies
    assert accuracies[0] > 0.95 and accuracies[1] < 0.6 and accuracies[2] <= accuracies[1]
    zero, one = result.points[0], result.points[1]
    assert zero.mean_edits == 0.0 and zero.mean_queries is None and zero.mean_linf is None
    assert one.max_edits <= 1 and one.mean_queries > 1
    assert result.reliable is True
    assert "not_converged" in result.sanity_skipped and "non_monotonic_epsilon" in result.sanity_checks
    payload = result.to_dict()
    assert payload["points"][1]["max_edits"] <= 1 and payload["config"]["attack"] == "text"
