"""Greedy word (token) substitution and deletion: a score-based black-box attack on text classifiers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from evaluations.engine.common import EngineInputError, InvalidConfigError, ShapeMismatchError
from evaluations.engine.models.classifier import Classifier, TorchClassifier
from evaluations.engine.robustness._checks import check_device
from evaluations.engine.robustness.square import margin

__all__ = ["TextAttackConfig", "TextAttackResult", "compact_tokens", "text_attack"]

_NEIGHBOUR_CHUNK = 256
_PROBE_BATCH = 1024


@dataclass(frozen=True)
class TextAttackConfig:
    """Greedy token-attack settings.

    Attributes:
        max_edits: edit budget per input: at most this many tokens are substituted or deleted.
        n_candidates: substitutes tried per position: the token's nearest neighbours by cosine similarity
            in the model's embedding matrix (ignored when ``candidate_ids`` is given).
        allow_deletion: also try deleting the token at each position.
        candidate_ids: a fixed set of substitute token ids tried at every position, for models without an
            embedding matrix or to restrict edits to, e.g., synonyms; None means embedding neighbours.
        padding_idx: the padding token id; sequences are right-padded with it.
    """

    max_edits: int = 3
    n_candidates: int = 8
    allow_deletion: bool = True
    candidate_ids: tuple[int, ...] | None = None
    padding_idx: int = 0

    def __post_init__(self) -> None:
        for name, low in (("max_edits", 0), ("n_candidates", 0), ("padding_idx", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidConfigError(f"{name} must be an integer >= {low}; got {value!r}.")
        if not isinstance(self.allow_deletion, bool):
            raise InvalidConfigError(f"allow_deletion must be True or False; got {self.allow_deletion!r}.")
        if self.candidate_ids is not None:
            ids = tuple(self.candidate_ids)
            if not ids or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ids):
                raise InvalidConfigError(
                    "candidate_ids must be a non-empty sequence of non-negative token ids, or None for "
                    "embedding neighbours."
                )
            object.__setattr__(self, "candidate_ids", ids)
        if self.candidate_ids is None and self.n_candidates == 0 and not self.allow_deletion:
            raise InvalidConfigError("Nothing to try: set n_candidates >= 1, candidate_ids, or allow_deletion=True.")


@dataclass(frozen=True, eq=False)
class TextAttackResult:
    """Text-attack output: token ids ``(N, L)``, edits ``(N,)``, queries ``(N,)`` and success ``(N,)``."""

    adversarial: Tensor
    edits: Tensor
    queries: Tensor
    success: Tensor


def compact_tokens(tokens: Tensor, padding_idx: int = 0) -> Tensor:
    """Move padding to the right of each row, keeping the order of the other tokens (true deletion)."""
    order = torch.argsort((tokens == padding_idx).to(torch.int8), dim=1, stable=True)
    return tokens.gather(1, order)


def text_attack(
    classifier: Classifier,
    tokens: Tensor,
    y: Tensor,
    config: TextAttackConfig,
    *,
    seed: int | None = None,
    device: torch.device | str | None = None,
) -> TextAttackResult:
    r"""Greedy score-based token attack in the style of 'Is BERT Really Robust?' (TextFooler; Jin et al.,
    AAAI 2020) and 'Generating Natural Language Adversarial Examples through Probability Weighted Word
    Saliency' (PWWS; Ren et al., ACL 2019), using only the model's output scores.

    Positions are ranked by how much deleting their token lowers the margin ``z_y - max_{j != y} z_j``;
    then, in that order, each position gets the candidate (a substitute or a deletion) that lowers the
    margin most, if any does, until the prediction flips or ``max_edits`` tokens were edited. Deleted
    tokens are removed and the sequence re-padded on the right, so the model always sees valid input.

    Input convention: ``tokens`` is int64 ``(N, L)``, token ids right-padded with ``padding_idx`` (0),
    exactly what ``text_embeddingbag`` models take.

    Distance Measure: L0 over tokens (edits: substitutions plus deletions).

    Arguments:
        classifier: a classifier on int64 token ids ``(N, L)``; embedding neighbours need a torch model
            with an ``nn.Embedding``/``nn.EmbeddingBag``; otherwise pass ``candidate_ids``.
        tokens: clean token ids, int64, shape ``(N, L)``, right-padded.
        y: true labels, shape ``(N,)``, integers in ``[0, num_classes)``.
        config: :class:`TextAttackConfig`.
        seed: accepted for a uniform attack signature; the greedy search draws no random numbers.
        device: where to run; defaults to, and must match, ``classifier.device``.

    Returns:
        :class:`TextAttackResult`: adversarial token ids ``(N, L)`` (right-padded), edits ``(N,)``
        (at most ``max_edits``), model queries ``(N,)`` and success ``(N,)`` (bool), on the classifier's
        device.
    """
    del seed  # deterministic
    run_device = check_device(classifier, device)
    tokens, y = _prepare(classifier, tokens, y, config, run_device)
    with torch.no_grad():
        neighbours = _candidate_table(classifier, tokens, config)
        return _run(classifier, tokens, y, config, neighbours)


def _prepare(
    classifier: Classifier, tokens: Tensor, y: Tensor, config: TextAttackConfig, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Check the token batch and move it to the attack device."""
    integer = isinstance(tokens, Tensor) and not (tokens.is_floating_point() or tokens.is_complex())
    if not integer or tokens.dtype == torch.bool:
        raise EngineInputError("tokens must be an integer torch tensor of token ids, shape (N, L), 0 = padding.")
    classifier.check_input(tokens)
    if tokens.dim() != 2:
        raise ShapeMismatchError(f"tokens must have shape (N, L); got {tuple(tokens.shape)}.")
    if not isinstance(y, Tensor) or y.shape != (tokens.shape[0],):
        raise ShapeMismatchError(f"y must be a tensor of shape ({tokens.shape[0]},) to match tokens.")
    if tokens.numel() and int(tokens.min()) < 0:
        raise EngineInputError("Token ids must be non-negative; 0 is padding.")
    if config.candidate_ids is not None and max(config.candidate_ids) > classifier.bounds[1]:
        raise InvalidConfigError(
            f"candidate_ids go up to {max(config.candidate_ids)} but the model's token ids end at "
            f"{int(classifier.bounds[1])}; drop the out-of-vocabulary ids."
        )
    return tokens.detach().to(device=device, dtype=torch.int64), y.detach().to(device=device, dtype=torch.int64)


def _embedding_matrix(classifier: Classifier) -> Tensor | None:
    """The first token-embedding weight ``(V, D)`` of a torch model, or None."""
    if not isinstance(classifier, TorchClassifier):
        return None
    for module in classifier.module.modules():
        if isinstance(module, nn.Embedding | nn.EmbeddingBag):
            return module.weight.detach()
    return None


def _candidate_table(classifier: Classifier, tokens: Tensor, config: TextAttackConfig) -> Tensor:
    """Substitutes per vocabulary id, ``(V, K)`` with -1 for none; only rows of ids in ``tokens`` are filled."""
    pad = config.padding_idx
    if config.candidate_ids is not None:
        fixed = torch.tensor(config.candidate_ids, dtype=torch.int64, device=tokens.device)
        vocab = max(int(tokens.max()) if tokens.numel() else 0, int(fixed.max())) + 1
        table = fixed[None, :].expand(vocab, -1).clone()
        table[table == pad] = -1
        # Substituting a token with itself is not an edit.
        table[table == torch.arange(vocab, device=tokens.device)[:, None]] = -1
        return table
    weight = _embedding_matrix(classifier)
    if weight is None:
        raise InvalidConfigError(
            "This model has no token-embedding matrix to draw nearest-neighbour substitutes from; "
            "pass TextAttackConfig(candidate_ids=...) with the token ids to try."
        )
    vocab = weight.shape[0]
    if tokens.numel() and int(tokens.max()) >= vocab:
        raise EngineInputError(f"Token ids go up to {int(tokens.max())} but the vocabulary has {vocab} entries.")
    k = min(config.n_candidates, vocab - 2)
    table = torch.full((vocab, max(k, 0)), -1, dtype=torch.int64, device=tokens.device)
    if k <= 0:
        return table
    unit = torch.nn.functional.normalize(weight.to(device=tokens.device, dtype=torch.float32), dim=1)
    present = torch.unique(tokens)
    present = present[present != pad]
    for chunk in present.split(_NEIGHBOUR_CHUNK):
        similarity = unit[chunk] @ unit.T
        similarity[:, pad] = float("-inf")
        similarity.scatter_(1, chunk[:, None], float("-inf"))
        table[chunk] = similarity.topk(k, dim=1).indices
    return table


def _scores(classifier: Classifier, batch: Tensor, y: Tensor, pad: int) -> tuple[Tensor, Tensor]:
    """Margins and misclassification of ``batch`` after compacting its deletions."""
    logits = classifier.logits(compact_tokens(batch, pad)).to(batch.device)
    return margin(logits, y), logits.argmax(dim=1) != y


def _run(
    classifier: Classifier, tokens: Tensor, y: Tensor, config: TextAttackConfig, table: Tensor
) -> TextAttackResult:
    """Rank positions by leave-one-out importance, then edit greedily in that order."""
    pad = config.padding_idx
    n, length = tokens.shape
    working = tokens.clone()  # deletions are holes (pad) here; compacted before every query
    edits = torch.zeros(n, dtype=torch.int64, device=tokens.device)
    current, success = _scores(classifier, working, y, pad)
    queries = torch.ones(n, dtype=torch.int64, device=tokens.device)
    present = working != pad
    if config.max_edits == 0 or length == 0:
        return TextAttackResult(compact_tokens(working, pad), edits, queries, success)

    # Leave-one-out importance: the margin drop when each present token is deleted.
    sample, position = present.nonzero(as_tuple=True)
    probes = working[sample].clone()
    probes[torch.arange(sample.numel(), device=tokens.device), position] = pad
    deleted_margin = torch.cat(
        [
            _scores(classifier, probes[s : s + _PROBE_BATCH], y[sample[s : s + _PROBE_BATCH]], pad)[0]
            for s in range(0, sample.numel(), _PROBE_BATCH)
        ]
        or [torch.empty(0, device=tokens.device)]
    )
    queries += present.sum(dim=1)
    importance = torch.full((n, length), float("-inf"), device=tokens.device)
    importance[sample, position] = current[sample] - deleted_margin
    order = importance.argsort(dim=1, descending=True, stable=True)
    n_present = present.sum(dim=1)

    for rank in range(length):
        active = ~success & (edits < config.max_edits) & (rank < n_present)
        rows = active.nonzero().squeeze(1)  # one sync per position rank
        if rows.numel() == 0:
            break
        pos = order[rows, rank]
        original = working[rows, pos]
        options = table[original]  # (A, K)
        if config.allow_deletion:
            options = torch.cat([options, torch.full_like(options[:, :1], pad)], dim=1)
        if options.shape[1] == 0:
            break
        a, k = options.shape
        valid = options >= 0
        trials = working[rows][:, None, :].expand(a, k, length).clone()
        batch_index = torch.arange(a, device=tokens.device)[:, None]
        option_index = torch.arange(k, device=tokens.device)[None, :]
        trials[batch_index, option_index, pos[:, None]] = options.clamp_min(0)
        trial_margin, _ = _scores(classifier, trials.reshape(a * k, length), y[rows].repeat_interleave(k), pad)
        trial_margin = trial_margin.view(a, k).masked_fill(~valid, float("inf"))
        queries[rows] += valid.sum(dim=1)
        best_margin, best = trial_margin.min(dim=1)
        accept = best_margin < current[rows]
        chosen = options.gather(1, best[:, None]).squeeze(1)
        working[rows, pos] = torch.where(accept, chosen, original)
        edits[rows] += accept.to(torch.int64)
        current[rows] = torch.where(accept, best_margin, current[rows])
        # Misclassified means argmax != y; a margin <= 0 is the same up to ties.
        success[rows] = success[rows] | (accept & (best_margin <= 0))

    adversarial = compact_tokens(working, pad)
    success = classifier.logits(adversarial).to(tokens.device).argmax(dim=1) != y
    return TextAttackResult(adversarial, edits, queries, success)
