"""Extraction on token-id (text) victims: Jacobian augmentation as token substitutions; detection on texts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from evaluations.engine.common import EngineInputError
from evaluations.engine.extraction import ExtractionConfig, JacobianAugmentation, LocalVictim, extract
from evaluations.engine.extraction.detection import DetectorConfig, ExtractionDetector
from evaluations.engine.extraction.strategies import _token_substitutions
from evaluations.engine.models import TorchClassifier, build

VOCAB, LENGTH = 40, 12
#: The tiny text task: a message is class 1 ("spam") when it holds any of these words.
SPAM_WORDS = (3, 4, 5)


def _texts(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` right-padded messages of 4-12 words from [1, VOCAB) and their labels."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(1, VOCAB, (n, LENGTH), generator=generator)
    lengths = torch.randint(4, LENGTH + 1, (n,), generator=generator)
    x[torch.arange(LENGTH)[None, :] >= lengths[:, None]] = 0
    y = torch.isin(x, torch.tensor(SPAM_WORDS)).any(dim=1).long()
    return x, y


@pytest.fixture(scope="module")
def text_victim() -> TorchClassifier:
    """A ``text_embeddingbag`` trained on the tiny task (about 95% accurate)."""
    x, y = _texts(2000, seed=0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        module = build("text_embeddingbag", vocab_size=VOCAB, embed_dim=16, num_classes=2)
        optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
        for _ in range(40):
            for index in torch.randperm(len(y)).split(100):
                optimizer.zero_grad()
                F.cross_entropy(module(x[index]), y[index]).backward()
                optimizer.step()
    return TorchClassifier(
        module.eval(), input_shape=(LENGTH,), bounds=(0.0, VOCAB - 1.0), num_classes=2, input_dtype=torch.int64
    )


TEXT_SURROGATE = {"surrogate": "text_embeddingbag", "surrogate_hyperparams": {"vocab_size": VOCAB, "embed_dim": 16}}


def test_jacobian_augmentation_on_token_ids_substitutes_words_of_earlier_queries(text_victim):
    pool, _ = _texts(200, seed=1)
    x_eval, y_eval = _texts(200, seed=2)
    recorded: list[torch.Tensor] = []

    class Recording(LocalVictim):
        def _answer(self, x):
            recorded.append(x.clone())
            return super()._answer(x)

    config = ExtractionConfig(budgets=(20, 60), transfer_attack=None, epochs=5, min_steps=50, **TEXT_SURROGATE)
    result = extract(
        Recording(text_victim),
        JacobianAugmentation(seed_size=20, step=0.1),
        x_eval,
        y_eval,
        config,
        pool=pool,
        evaluation_victim=LocalVictim(text_victim),
        seed=0,
    )
    assert result.complete and result.queries_used == 60
    queries = torch.cat(recorded)
    assert queries.dtype == torch.int64 and queries.shape == (60, LENGTH)
    for i in range(20, 60):  # after the 20 seeds, every query is a step from an earlier one
        differing = (queries[:i] != queries[i]).sum(dim=1)
        parent = int(differing.argmin())
        # a round substitutes max(1, round(0.1 * n)) = 1 word of a 4-12 word message, never padding
        assert int(differing[parent]) <= 1
        assert torch.equal(queries[parent] == 0, queries[i] == 0)
    assert int((queries[20:40] != queries[:20, None]).sum(dim=2).min(dim=0).values.max()) == 1


def test_a_positive_token_step_raises_the_surrogates_probability_of_the_victim_label(text_victim):
    x, _ = _texts(300, seed=3)
    labels = text_victim.predict(x).clone()  # out of inference mode
    module = text_victim.module
    up = _token_substitutions(module, x, labels, 1.0, 0.25, torch.device("cpu"))
    down = _token_substitutions(module, x, labels, -1.0, 0.25, torch.device("cpu"))

    def chosen(inputs):  # log-probabilities: the victim is nearly saturated, the direction is what counts
        with torch.inference_mode():
            return torch.log_softmax(module(inputs), dim=1).gather(1, labels[:, None]).squeeze(1)

    before = chosen(x)
    raised, lowered = chosen(up) - before, chosen(down) - before
    # a first-order step: most rows move the predicted way, and on average clearly so
    assert float((raised > 0).float().mean()) > 0.6 and float(raised.mean()) > 0
    assert float((lowered < 0).float().mean()) > 0.6 and float(lowered.mean()) < -0.1
    assert all(p.requires_grad for p in module.parameters())  # parameter flags are restored


def test_a_surrogate_that_cannot_read_the_victims_inputs_is_a_named_error(text_victim, victim_model, digits):
    pool, _ = _texts(60, seed=4)
    x_eval, y_eval = _texts(30, seed=5)
    config = ExtractionConfig(budgets=(20, 40), transfer_attack=None, surrogate="mlp", epochs=2, min_steps=5)
    with pytest.raises(EngineInputError, match="takes token ids.*'text_embeddingbag'"):
        extract(LocalVictim(text_victim), JacobianAugmentation(seed_size=20), x_eval, y_eval, config, pool=pool, seed=0)
    config = ExtractionConfig(budgets=(20,), transfer_attack=None, **TEXT_SURROGATE)
    with pytest.raises(EngineInputError, match="takes float inputs"):
        extract(LocalVictim(victim_model), JacobianAugmentation(), digits[2][:20], digits[3][:20], config, seed=0)


def test_token_steps_need_a_surrogate_with_an_embedding():
    x, _ = _texts(10, seed=6)
    no_embedding = build("mlp", in_features=LENGTH, num_classes=2)
    with pytest.raises(EngineInputError, match="no nn.Embedding or nn.EmbeddingBag"):
        _token_substitutions(no_embedding, x, torch.zeros(10, dtype=torch.int64), 1.0, 0.1, torch.device("cpu"))


# --- detection on token streams -------------------------------------------------------------------


def _edit_stream(n: int, seed: int) -> np.ndarray:
    """20 distinct messages, then messages that each change one word of an earlier one."""
    rng = np.random.default_rng(seed)
    x, _ = _texts(20, seed=seed)
    stream = [row.numpy() for row in x]
    while len(stream) < n:
        child = stream[rng.integers(len(stream))].copy()
        position = rng.integers(int((child != 0).sum()))
        child[position] = 1 + (child[position] + rng.integers(1, VOCAB - 2)) % (VOCAB - 1)
        stream.append(child)
    return np.stack(stream)


def test_the_edit_monitor_flags_a_stream_of_word_substitutions_and_passes_distinct_texts():
    detector = ExtractionDetector(DetectorConfig())
    edits = detector.observe_batch("editor", _edit_stream(120, seed=6), labels=np.zeros(120, dtype=int))
    assert edits.flagged and edits.flagged_by == ("edits",) and edits.first_flagged_at <= 80
    texts, _ = _texts(120, seed=7)
    benign = detector.observe_batch("reader", texts.numpy(), labels=np.zeros(120, dtype=int))
    assert not benign.flagged and benign.edit_fraction is not None and benign.edit_fraction < 0.5


def test_repeating_the_same_query_is_not_an_edit(digits):
    detector = ExtractionDetector(DetectorConfig(prada_threshold=None))
    state = detector.observe_batch("repeater", digits[2][:1].repeat(80, 1, 1, 1), labels=np.zeros(80, dtype=int))
    assert state.edit_fraction == 0.0 and not state.flagged


def test_token_queries_are_compared_as_bags_of_words_and_prada_leaves_them_alone_by_default():
    message = np.array([5, 9, 12, 7, 0, 0, 0, 0, 0, 0, 0, 0])
    rng = np.random.default_rng(8)
    shuffled = np.stack([np.concatenate([rng.permutation(message[:4]), message[4:]]) for _ in range(120)])
    default = ExtractionDetector().observe_batch("c", shuffled, labels=np.zeros(120, dtype=int))
    assert default.prada_w is None and not default.prada_flagged
    # as bags of words every reordering is the same point: all distances 0, as far from normal as it gets
    judged = ExtractionDetector(DetectorConfig(prada_token_threshold=0.5, edit_max_change=None))
    state = judged.observe_batch("c", shuffled, labels=np.zeros(120, dtype=int))
    assert state.prada_w == 0.0 and state.flagged_by == ("prada",)


def test_a_client_state_stored_before_the_edit_monitor_existed_keeps_working(digits):
    detector = ExtractionDetector()
    detector.observe("old", digits[2][0], label=0)
    client = detector._clients["old"]
    del client.history, client.edits  # what an older pickled state lacks
    state = detector.observe("old", digits[2][1], label=0)
    assert state.queries == 2 and not state.flagged
