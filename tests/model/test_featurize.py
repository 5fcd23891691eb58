"""app.model.featurize: WordPiece as BERT uncased splits words, case classes, `featurize` and
its pieces-only forms (`featurize_pieces`, `text_pieces` from raw text), and padding a batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from app.model.featurize import (
    CASE_LOWER,
    CASE_MIXED,
    CASE_NONE,
    CASE_TITLE,
    CASE_UPPER,
    PAD_ID,
    Features,
    WordPiece,
    case_class,
    featurize,
    featurize_pieces,
    length_batches,
    pad_batch,
    text_pieces,
)
from app.model.text import split_words, tokenize


@pytest.fixture(scope="module")
def wordpiece(model_dir: Path) -> WordPiece:
    return WordPiece.from_file(model_dir / "vocab.txt")


def pieces(wordpiece: WordPiece, word: str) -> list[str]:
    names = {i: piece for piece, i in wordpiece.vocab.items()}
    return [names[i] for i in wordpiece.word_ids(word)]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("unaffable", ["una", "##ffa", "##ble"]),  # longest match first, then continuations
        ("Zürich", ["zurich"]),  # lowercased, accents stripped
        ("a.b", ["a", ".", "b"]),  # punctuation is split off
        ("東京", ["東", "京"]),  # each CJK ideograph on its own
        ("ab\x00c", ["abc"]),  # control characters dropped
        ("\u0301", ["[UNK]"]),  # nothing left: one [UNK], never no piece
        ("a☃", ["[UNK]"]),  # a part with no match is one [UNK]
        ("x" * 101, ["[UNK]"]),  # over 100 characters, as BERT
    ],
)
def test_wordpiece(wordpiece: WordPiece, word: str, expected: list[str]) -> None:
    assert pieces(wordpiece, word) == expected


@pytest.fixture(scope="module")
def bert_uncased(model_dir: Path) -> Tokenizer:
    """BERT uncased's WordPiece as HF tokenizers builds it, on the same vocabulary."""
    vocab = str(model_dir / "vocab.txt")
    bert = Tokenizer(models.WordPiece.from_file(vocab, unk_token="[UNK]"))
    bert.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True
    )
    bert.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return bert


# Latin scripts (categories differ between Unicode versions further up, and HF tokenizers is
# on another version than Python), and pieces WordPiece treats specially.
_LATIN = st.characters(max_codepoint=0x24F, exclude_categories=("Cn", "Co", "Cs"))
_SPECIAL = ["un", "##", "aff", "able", "ing", "é", "ü", ".", "-", "\x00", "\u0301", "東", "\u00ad"]
WORDS = st.one_of(
    st.text(_LATIN, max_size=30),
    st.lists(st.sampled_from(_SPECIAL + ["\u200b", "x" * 50]), max_size=12).map("".join),
)


@settings(max_examples=500, deadline=None)
@given(word=WORDS)
def test_wordpiece_splits_as_bert_uncased(
    wordpiece: WordPiece, bert_uncased: Tokenizer, word: str
) -> None:
    bert = tuple(bert_uncased.encode(word, add_special_tokens=False).ids)
    assert wordpiece.word_ids(word) == (bert or (wordpiece.unk_id,))


@pytest.mark.parametrize(
    ("word", "case"),
    [
        ("the", CASE_LOWER),
        ("e-mail", CASE_LOWER),
        ("The", CASE_TITLE),
        ("A", CASE_TITLE),  # one capital letter: a title, not shouting
        ("Über", CASE_TITLE),
        ("THE", CASE_UPPER),
        ("U.S.", CASE_UPPER),
        ("COVID-19", CASE_UPPER),
        ("iPhone", CASE_MIXED),
        ("McDonald", CASE_MIXED),
        ("3.5", CASE_NONE),
        (",", CASE_NONE),
    ],
)
def test_case_class(word: str, case: int) -> None:
    assert case_class(word) == case


def test_featurize_marks_each_words_first_piece_and_its_case(wordpiece: WordPiece) -> None:
    words = ["The", "unaffable", "CEO"]
    f = featurize(words, wordpiece, frozenset({"upos"}))
    unaffable = list(wordpiece.word_ids("unaffable"))
    assert f.input_ids.tolist() == [wordpiece.vocab["the"], *unaffable, wordpiece.vocab["ceo"]]
    assert f.word_starts.tolist() == [0, 1, 4] and f.length == 5
    assert f.case_ids.tolist() == [CASE_TITLE, CASE_LOWER, CASE_LOWER, CASE_LOWER, CASE_UPPER]
    assert f.words == tuple(words) and f.heads == frozenset({"upos"})
    assert f.input_ids.dtype == f.case_ids.dtype == f.word_starts.dtype == np.int64
    assert f.space_ids is None


def test_pieces_only_features_have_the_same_pieces(wordpiece: WordPiece) -> None:
    for text in ["Alice moved to Paris.", "naïve CAFÉ-owners don't (re)think", "x" * 300]:
        words = [t.text for t in tokenize(text)]
        full, only = featurize(words, wordpiece), featurize_pieces(words, wordpiece)
        np.testing.assert_array_equal(only.input_ids, full.input_ids)
        assert only.case_ids.shape == full.case_ids.shape and not only.case_ids.any()
        assert only.word_starts.size == 0


# Pieces the rules care about, plus surrogates, controls, marks and emoji.
_PIECES = list("aZn't’`s.,:;/@-_$%!?()<>\"'#&+=* \t\n09") + [
    "\ud800", "\x00", "\u0301", "\u200d", "\u200b", "😀", "🏽", "🇺", "ש", "\ufeff", "http://",
    "www.", ".doc", "its ", "e-", "Dr.", "etc.",
]  # fmt: skip
_TRICKY = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)
EMBED_TEXTS = ["its a test", "its own", "Paris etc.", 'He said etc."', "tab\tand\u00a0nbsp", ""]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), _TRICKY, st.sampled_from(EMBED_TEXTS)))
def test_text_pieces_are_the_words_pieces(wordpiece: WordPiece, text: str) -> None:
    """/embed reads piece ids per chunk from a cache (`text_pieces`): the pieces of
    `split_words`, and its word count or one less (a final `etc.` is `etc .`)."""
    words = split_words(text)
    found = text_pieces(text, wordpiece)
    if found is None:  # `its` may be split across chunks: the caller uses `split_words`
        assert "its" in text.lower()
        return
    features, count = found
    expected = featurize_pieces(words, wordpiece)
    np.testing.assert_array_equal(features.input_ids, expected.input_ids)
    np.testing.assert_array_equal(features.case_ids, expected.case_ids)
    assert count in (len(words), len(words) - 1)


def sentence(ids: list[int], spaces: bool) -> Features:
    n = len(ids)
    cases = np.arange(1, n + 1, dtype=np.int64) % 5 + 1
    space_ids = np.full(n, 3, dtype=np.int64) if spaces else None
    return Features(np.asarray(ids, np.int64), cases, np.arange(n, dtype=np.int64), space_ids)


SENTENCES = st.lists(st.lists(st.integers(1, 30521), min_size=1, max_size=40), max_size=8)


@settings(max_examples=200, deadline=None)
@given(sentences=SENTENCES, spaces=st.booleans())
def test_a_padded_batch_sliced_back_gives_each_sentence(
    sentences: list[list[int]], spaces: bool
) -> None:
    batch = [sentence(ids, spaces) for ids in sentences]
    feeds = pad_batch(batch)
    T = max((len(ids) for ids in sentences), default=0)
    names = ["input_ids", "case_ids", "lengths", *(["space_ids"] if spaces and batch else [])]
    assert list(feeds) == names
    assert feeds["input_ids"].shape == (len(batch), T) and feeds["lengths"].shape == (len(batch),)
    assert all(a.dtype == np.int64 for a in feeds.values())
    for i, f in enumerate(batch):
        n = int(feeds["lengths"][i])
        assert n == f.length
        np.testing.assert_array_equal(feeds["input_ids"][i, :n], f.input_ids)
        np.testing.assert_array_equal(feeds["case_ids"][i, :n], f.case_ids)
        assert (feeds["input_ids"][i, n:] == PAD_ID).all() and not feeds["case_ids"][i, n:].any()
        if spaces:
            np.testing.assert_array_equal(feeds["space_ids"][i, :n], f.space_ids)
            assert not feeds["space_ids"][i, n:].any()


@settings(max_examples=100, deadline=None)
@given(sentences=SENTENCES, size=st.integers(1, 5))
def test_length_batches_pad_each_sentence_once_shortest_first(
    sentences: list[list[int]], size: int
) -> None:
    features = [sentence(ids, False) for ids in sentences]
    seen: list[int] = []
    longest = 0
    for indices, feeds in length_batches(features, size):
        assert 0 < len(indices) <= size
        lengths = [features[i].length for i in indices]
        assert lengths == sorted(lengths) and lengths[0] >= longest
        longest = lengths[-1]
        expected = pad_batch([features[i] for i in indices])
        for name, array in expected.items():
            np.testing.assert_array_equal(feeds[name], array)
        seen += indices
    assert sorted(seen) == list(range(len(features)))
