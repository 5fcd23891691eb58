"""BERT uncased WordPiece on HF `tokenizers` (Rust): the same ids as `featurize.WordPiece`, with
the same interface (`word_ids`, `chunk_ids`), plus `sentence_ids`, which encodes a sentence's
words in one call: pre-tokenized words in, ids out, no special tokens.

HF's BertNormalizer leaves CJK Extension E's first 256 code points (U+2B820-U+2B91F) unsplit
(its range starts at U+2B920), where BERT's own rule, which `featurize.WordPiece` follows, makes
each ideograph a word of its own; a pre-tokenizer splitting those off makes the two agree. They
still differ where HF's Unicode tables and Python's `unicodedata` disagree on a category: BERT's
rule drops unassigned code points (category Cn, "other") and HF keeps them, and a few hundred
characters changed category or were assigned after HF's tables. Assigned characters of Python's
database with the same category in both give the same ids (tests/model/test_wordpiece.py).

The service tokenizes with `featurize.WordPiece`: with its per-word cache, a sentence costs less
CPU there than one call into `tokenizers` does, so `tokenizers` stays a dev dependency and the
service never imports this module.
"""

from __future__ import annotations

from functools import lru_cache

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece as WordPieceModel

from app.model.featurize import MAX_CHARS_PER_WORD, UNK
from app.model.text import chunk_words

_BERT_CJK_NOT_IN_HF = r"[\x{2B820}-\x{2B91F}]"


def bert_tokenizer(vocab: list[str]) -> Tokenizer:
    """BERT uncased basic tokenization and WordPiece over `vocab`, as in its tokenizer.json, plus
    the CJK split HF leaves out."""
    model = WordPieceModel(
        {piece: i for i, piece in enumerate(vocab)},
        unk_token=UNK,
        max_input_chars_per_word=MAX_CHARS_PER_WORD,
    )
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.BertPreTokenizer(),
            pre_tokenizers.Split(Regex(_BERT_CJK_NOT_IN_HF), behavior="isolated"),
        ]
    )
    return tokenizer


class RustWordPiece:
    """Greedy longest-match-first WordPiece over a BERT vocabulary, in Rust."""

    def __init__(self, vocab: list[str]) -> None:
        self.tokenizer = bert_tokenizer(vocab)
        self.unk_id = vocab.index(UNK)
        self.word_ids = lru_cache(maxsize=200_000)(self._word_ids)
        self.chunk_ids = lru_cache(maxsize=100_000)(self._chunk_ids)

    def sentence_ids(self, words: list[str]) -> list[tuple[int, ...]]:
        """Piece ids of each word, from one call; never empty (a word with nothing left after
        normalization is one [UNK], as in `featurize.WordPiece`)."""
        if not words:
            return []
        encoding = self.tokenizer.encode(words, is_pretokenized=True, add_special_tokens=False)
        pieces: list[list[int]] = [[] for _ in words]
        for piece, word in zip(encoding.ids, encoding.word_ids, strict=True):
            pieces[word].append(piece)  # every piece of a pre-tokenized input has its word
        return [tuple(p) or (self.unk_id,) for p in pieces]

    def _word_ids(self, word: str) -> tuple[int, ...]:
        return self.sentence_ids([word])[0]

    def _chunk_ids(self, chunk: str) -> tuple[tuple[int, ...], int]:
        """Piece ids and word count of one whitespace-free chunk of text (`text.chunks`)."""
        words = chunk_words(chunk)
        return tuple(i for ids in self.sentence_ids(words) for i in ids), len(words)
