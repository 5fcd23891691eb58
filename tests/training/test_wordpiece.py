"""RustWordPiece (HF `tokenizers`) against featurize.WordPiece: the same ids on EWT dev words, on
100k corpus sentences (both beside the checkout, as `make eval` reads them, else skipped) and on
every CJK ideograph; both split CJK ideographs as BERT's own tokenizer does."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest

from app.model.featurize import WordPiece, _basic_split
from app.model.text import split_words
from tests.helpers import ROOT

pytest.importorskip("tokenizers")
from training.wordpiece import RustWordPiece  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
EWT_DEV = DATA / "ud-ewt" / "en_ewt-ud-dev.conllu"
SENTENCES = DATA / "sentences" / "sentences.txt"
CORPUS_LINES = 100_000
SENTENCE_CALLS = 5_000  # of those, encoded a sentence per call; the rest word by word

# BERT's `_is_chinese_char` blocks (google-research/bert tokenization.py).
BERT_CJK = [
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
]


@pytest.fixture(scope="module")
def vocab(model_dir: Path) -> list[str]:
    return (model_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def both(vocab: list[str]) -> tuple[WordPiece, RustWordPiece]:
    return WordPiece(vocab), RustWordPiece(vocab)


def conllu_words(path: Path) -> Iterator[str]:
    for line in path.open(encoding="utf-8"):
        cols = line.rstrip("\n").split("\t")
        if len(cols) == 10 and cols[0].isdigit():  # a word, not a multiword range or a comment
            yield cols[1]


def differing(py: WordPiece, rs: RustWordPiece, words: set[str]) -> list[str]:
    return sorted(w for w in words if py.word_ids(w) != rs.word_ids(w))


@pytest.mark.skipif(not EWT_DEV.is_file(), reason=f"no {EWT_DEV}")
def test_same_ids_on_ewt_dev_words(both: tuple[WordPiece, RustWordPiece]) -> None:
    words = set(conllu_words(EWT_DEV))
    assert len(words) > 5000
    assert differing(*both, words) == []


@pytest.mark.slow  # 100k sentences read and split: seconds
@pytest.mark.skipif(not SENTENCES.is_file(), reason=f"no {SENTENCES}")
def test_same_ids_on_corpus_sentences(both: tuple[WordPiece, RustWordPiece]) -> None:
    py, rs = both
    with SENTENCES.open(encoding="utf-8") as f:
        sentences = [split_words(line.rstrip("\n")) for line in islice(f, CORPUS_LINES)]
    assert len(sentences) == CORPUS_LINES
    assert differing(py, rs, {w for words in sentences for w in words}) == []
    for words in sentences[:SENTENCE_CALLS]:  # a sentence's words in one call: the same ids
        assert rs.sentence_ids(words) == [py.word_ids(w) for w in words], words


def assigned(lo: int, hi: int) -> list[str]:
    """The characters from `lo` to `hi` that Python's Unicode database assigns. Unassigned code
    points differ: BERT's rule drops them (category Cn, "other"), HF's tables keep them."""
    return [chr(c) for c in range(lo, hi + 1) if unicodedata.category(chr(c)) != "Cn"]


def test_same_ids_on_every_cjk_ideograph(both: tuple[WordPiece, RustWordPiece]) -> None:
    """Between two letters, on every character of BERT's blocks and 64 code points each side."""
    py, rs = both
    points = {c for lo, hi in BERT_CJK for c in assigned(lo - 64, hi + 64)}
    words = [f"a{c}b" for c in sorted(points)]
    for i in range(0, len(words), 4096):
        chunk = words[i : i + 4096]
        assert rs.sentence_ids(chunk) == [py.word_ids(w) for w in chunk]


@pytest.mark.parametrize("lo, hi", BERT_CJK)
def test_cjk_ideographs_are_words_of_their_own(lo: int, hi: int) -> None:
    chars = assigned(lo, hi)
    for c in (chars[0], chars[len(chars) // 2], chars[-1]):
        ideograph = unicodedata.normalize("NFD", c)  # compatibility ideographs map to unified
        assert _basic_split(f"ab{c}cd") == ["ab", ideograph, "cd"], hex(ord(c))


def test_rust_wordpiece_basics(both: tuple[WordPiece, RustWordPiece]) -> None:
    py, rs = both
    words = ["Héllo", "\u200b", "don't", "x" * 101, "", "New York"]
    assert rs.sentence_ids(words) == [py.word_ids(w) for w in words]
    assert rs.word_ids("\u200b") == (rs.unk_id,)  # nothing left after cleaning: one [UNK]
    assert rs.sentence_ids([]) == []
    assert rs.chunk_ids("Paris.") == py.chunk_ids("Paris.")
