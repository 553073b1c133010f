"""Tokenizer, vocabulary and the label<TAB>text loader, matched to the text_embeddingbag input convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluations.engine.common import EmptyDatasetError, LabelOutOfRangeError, sha256_file
from evaluations.engine.datasets import PAD_ID, UNK_ID, DatasetFormatError, Vocabulary, load_text_csv, tokenize
from evaluations.engine.datasets.text import encode_texts
from evaluations.engine.models import TorchClassifier, build

LINES = "ham\tSee you at 5, OK?\nspam\tWIN a FREE prize! Call now: win win\nham\tok see you soon\n"


def test_tokenize_lowercases_and_keeps_words_digits_and_apostrophes() -> None:
    assert tokenize("Don't WIN £1,000 now_please!") == ["don't", "win", "1", "000", "now", "please"]


def test_the_vocabulary_is_ordered_by_frequency_then_alphabet_with_padding_and_unknown_first() -> None:
    vocabulary = Vocabulary.build(["b a a", "c b a", "d"], min_frequency=2)
    assert vocabulary.tokens == ("<pad>", "<unk>", "a", "b")
    assert vocabulary.encode("a B zebra") == [2, 3, UNK_ID]
    assert len(Vocabulary.build(["b a a", "c b a", "d"], max_size=3)) == 3
    assert Vocabulary.from_dict(vocabulary.to_dict()) == vocabulary


def test_encode_texts_truncates_and_right_pads_with_zero() -> None:
    vocabulary = Vocabulary.build(["a b c"])
    ids = encode_texts(["a b c a", "b", ""], vocabulary, max_length=3)
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, [[2, 3, 4], [3, PAD_ID, PAD_ID], [PAD_ID] * 3])


def test_a_tsv_file_round_trips_into_padded_token_ids(tmp_path) -> None:
    path = tmp_path / "sms.tsv"
    path.write_text(LINES, encoding="utf-8")
    dataset = load_text_csv(path)
    assert dataset.class_names == ("ham", "spam")
    np.testing.assert_array_equal(dataset.y, [0, 1, 0])
    assert dataset.x.dtype == np.int64 and dataset.input_shape == (8,)  # the longest message has 8 tokens
    assert dataset.vocabulary.tokens[2] == "win"  # most frequent word
    assert dataset.vocabulary.decode(dataset.x[1]) == "win a free prize call now win win"
    assert dataset.texts[0] == "See you at 5, OK?"
    assert dataset.bounds == (0.0, float(len(dataset.vocabulary) - 1))
    assert dataset.source_sha256 == sha256_file(path)


def test_token_ids_feed_the_text_embeddingbag_architecture(tmp_path) -> None:
    path = tmp_path / "sms.tsv"
    path.write_text(LINES, encoding="utf-8")
    dataset = load_text_csv(path, max_length=6)
    module = build("text_embeddingbag", vocab_size=len(dataset.vocabulary), num_classes=2)
    classifier = TorchClassifier(
        module, input_shape=dataset.input_shape, bounds=dataset.bounds, num_classes=2, input_dtype=torch.int64
    )
    assert classifier.predict(torch.from_numpy(dataset.x.copy())).shape == (3,)


def test_a_test_file_is_encoded_with_the_train_vocabulary(tmp_path) -> None:
    (tmp_path / "train.tsv").write_text(LINES, encoding="utf-8")
    (tmp_path / "test.tsv").write_text("spam\tfree unseenword\n", encoding="utf-8")
    train = load_text_csv(tmp_path / "train.tsv")
    test = load_text_csv(
        tmp_path / "test.tsv",
        vocabulary=train.vocabulary,
        max_length=train.input_shape[0],
        class_names=train.class_names,
    )
    assert test.input_shape == train.input_shape
    assert test.x[0, :2].tolist() == [train.vocabulary.encode("free")[0], UNK_ID]
    np.testing.assert_array_equal(test.y, [1])


def test_a_comma_separated_file_with_quoted_texts(tmp_path) -> None:
    path = tmp_path / "texts.csv"
    path.write_text('pos,"good, very good"\nneg,bad\n', encoding="utf-8")
    dataset = load_text_csv(path, delimiter=",")
    assert dataset.texts == ("good, very good", "bad")
    assert dataset.class_names == ("neg", "pos")


def test_malformed_empty_and_unlabelled_files_are_refused(tmp_path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("ham\tfine\nno tab here\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="line 2"):
        load_text_csv(path)
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(EmptyDatasetError):
        load_text_csv(path)
    path.write_text(LINES, encoding="utf-8")
    with pytest.raises(LabelOutOfRangeError, match=r"\['spam'\]"):
        load_text_csv(path, class_names=["ham", "other"])
    path.write_bytes(b"ham\t\xff\xfe broken")
    with pytest.raises(DatasetFormatError, match="UTF-8"):
        load_text_csv(path)
