"""app.model.text.tokenize: EWT conventions, the offset invariant, speed; and training.tokeval."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.model.text import Token, split_words, tokenize
from training import tokeval


def words(text: str) -> list[str]:
    return [t.text for t in tokenize(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # clitics, with either apostrophe and without one
        ("I don't know", ["I", "do", "n't", "know"]),
        ("can't won't ain't", ["ca", "n't", "wo", "n't", "ai", "n't"]),
        ("I'm he's we're I've you'll she'd", ["I", "'m", "he", "'s", "we", "'re", "I", "'ve",
                                              "you", "'ll", "she", "'d"]),
        ("It’s John’s", ["It", "’s", "John", "’s"]),
        ("cannot gonna wanna dont", ["can", "not", "gon", "na", "wan", "na", "do", "nt"]),
        ("its a test of its own", ["it", "s", "a", "test", "of", "its", "own"]),
        ("O'Connell in the 70's", ["O'Connell", "in", "the", "70's"]),
        # punctuation
        ('He said "hi" (twice).', ["He", "said", '"', "hi", '"', "(", "twice", ")", "."]),
        ("wait... what?? no!!! ok?!", ["wait", "...", "what", "??", "no", "!!!", "ok", "?!"]),
        ("nice :) bad :-( -- done", ["nice", ":)", "bad", ":-(", "--", "done"]),
        # links
        ("see http://www.example.com/a?b=1.", ["see", "http://www.example.com/a?b=1", "."]),
        ("mail <john.smith@example.com>,", ["mail", "<", "john.smith@example.com", ">", ","]),
        ("<<Budget.xls>>", ["<<", "Budget.xls", ">>"]),
        # numbers
        ("3.5 1,000 10:30 9/11 16/11/2004", ["3.5", "1,000", "10:30", "9/11", "16/11/2004"]),
        ("$5 and 3%", ["$", "5", "and", "3", "%"]),
        ("at 5pm on the 2nd", ["at", "5", "pm", "on", "the", "2nd"]),
        ("5-10 713-654-0365 1/2", ["5", "-", "10", "713-654-0365", "1", "/", "2"]),
        # abbreviations
        ("the U.S. at 5 a.m. with Dr. J. Smith", ["the", "U.S.", "at", "5", "a.m.", "with", "Dr.",
                                                  "J.", "Smith"]),
        ("apples, pears, etc.", ["apples", ",", "pears", ",", "etc", "."]),
        # hyphens: EWT splits compounds but keeps prefixes
        ("an e-mail about long-term non-stop work", ["an", "e-mail", "about", "long", "-", "term",
                                                     "non-stop", "work"]),
        # non-English and invisible characters
        ("cafe\u0301 👍🏽", ["cafe\u0301", "👍🏽"]),
        ("\ufeffHi\x00there", ["Hi", "there"]),
    ],
)  # fmt: skip
def test_ewt_conventions(text: str, expected: list[str]) -> None:
    assert words(text) == expected


@pytest.mark.parametrize("text", ["", " ", " \t\n\r\u3000\u2028 "])
def test_blank_input_gives_no_tokens(text: str) -> None:
    assert list(tokenize(text)) == []


def test_offsets() -> None:
    assert list(tokenize("  don't!")) == [Token("do", 2, 4), Token("n't", 4, 7), Token("!", 7, 8)]


def assert_invariant(text: str, tokens: list[Token]) -> None:
    end = 0
    for t in tokens:
        assert t.text == text[t.start : t.end]
        assert t.text and not any(c.isspace() for c in t.text)
        assert end <= t.start  # ordered, non-overlapping
        end = t.end


# Pieces the rules care about, plus surrogates, controls, marks and emoji.
_PIECES = list("aZn't’`s.,:;/@-_$%!?()<>\"'#&+=* \t\n09") + [
    "\ud800", "\x00", "\u0301", "\u200d", "\u200b", "😀", "🏽", "🇺", "ש", "\ufeff", "http://",
    "www.", ".doc", "its ", "e-", "Dr.", "etc.",
]  # fmt: skip
_TRICKY = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), _TRICKY))
def test_offsets_invariant(text: str) -> None:
    assert_invariant(text, tokenize(text))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), _TRICKY))
def test_split_words_are_the_tokens_texts(text: str) -> None:
    """/embed splits with `split_words`, /tag with `tokenize`: the same words."""
    assert split_words(text) == [t.text for t in tokenize(text)]


def test_one_megabyte_is_fast() -> None:
    # Half short chunks exercising each rule, half 100 kB chunks of one repeated pattern; a rule
    # that rescans its chunk (quadratic time) would take minutes here instead of seconds.
    pieces = ["a.a.a", "a-b-c-", "1.2.3-4-", "@@a@,", "''''", "e\u0301\u0302", "x" * 30,
              "http://a.b/", "Dr.J.", "its a", "I don't know, etc... ok?!"]  # fmt: skip
    short = " ".join(pieces * (500_000 // len(" ".join(pieces))))
    long = [p * (100_000 // len(p)) for p in ["a-", "a.", "@,", "1.", "x'", "\u0301\u0302"]]
    text = " ".join([short, *long])
    assert len(text) > 1_000_000
    began = time.perf_counter()
    tokens = tokenize(text)
    assert time.perf_counter() - began < 60
    assert_invariant(text, tokens)


CONLLU = """\
# sent_id = s1
# text = I don't know.
1	I	I	PRON	PRP	_	3	nsubj	_	_
2-3	don't	_	_	_	_	_	_	_	_
2	do	do	AUX	VBP	_	4	aux	_	_
3	n't	not	PART	RB	_	4	advmod	_	_
4	know	know	VERB	VB	_	0	root	_	SpaceAfter=No
5	.	.	PUNCT	.	_	4	punct	_	_

# sent_id = s2
# text = See e-mail, ok
1	See	see	VERB	VB	_	0	root	_	_
2	e	e	NOUN	NN	_	1	obj	_	SpaceAfter=No
3	-	-	PUNCT	HYPH	_	1	punct	_	SpaceAfter=No
4	mail	mail	NOUN	NN	_	1	obj	_	SpaceAfter=No
5	,	,	PUNCT	,	_	1	punct	_	_
6	ok	ok	INTJ	UH	_	1	discourse	_	_

"""


def test_tokeval_on_a_tiny_treebank(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ud-ewt").mkdir()
    (tmp_path / "ud-ewt" / "en_ewt-ud-dev.conllu").write_text(CONLLU, encoding="utf-8")
    r = tokeval.evaluate(tmp_path, "dev")
    # s1: 5 of 5 right; s2: gold See e - mail , ok (6) vs See e-mail , ok (4), 3 right
    assert (r["gold"], r["pred"], r["correct"]) == (11, 9, 8)
    assert r["precision"] == pytest.approx(8 / 9)
    assert r["recall"] == pytest.approx(8 / 11)
    assert r["errors"] == [("e - mail => e-mail", 1)]
    assert tokeval.main(["--data", str(tmp_path)]) == 0
    assert "F1 80.00" in capsys.readouterr().out


def test_gold_spans() -> None:
    assert tokeval.gold_spans("I don't", ["I", "do", "n't"]) == [(0, 1), (2, 4), (4, 7)]
    assert tokeval.gold_spans("I don't", ["I", "do", "not"]) is None
