"""Raw text -> word tokens with character offsets, following UD English-EWT conventions.

EWT (checked against its train split; `training/tokeval.py` measures the rules on dev) splits
clitics (`don't` -> `do n't`, `won't` -> `wo n't`, `dont` -> `do nt`, `cannot` -> `can not`,
`gonna` -> `gon na`, `its a` -> `it s a`), most hyphens (`long - term`, but `e-mail`,
`non-stop`), ranges and fractions (`5 - 10`, `1 / 2`), units and symbols (`5 pm`, `$ 5`, `3 %`)
and punctuation. It keeps whole: URLs, e-mail addresses, file names, dotted names (`U.S.`,
`a.m.`, `www.x.com`), numbers (`3.5`, `1,000`, `10:30`, `9/11`, `713-654-0365`, `2nd`, `70's`),
known abbreviations and initials (`Dr.`, `etc.`, `J.`), punctuation runs (`...`, `!!!`, `?!`,
`--`) and emoticons (`:)`, `:-(`). An abbreviation ending the text gives up its period
(`etc .`), as EWT does at the end of a sentence.

Chunks between whitespace are matched by one alternation of patterns without nested
quantifiers, links are found per delimiter-bounded segment, so a pass is linear in the input.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from typing import NamedTuple, overload

# Hyphenated prefixes EWT keeps attached to the word (`non-stop`, `e-mail`); other hyphens split.
_PREFIXES = (
    "anti|arch|co|counter|cross|e|ex|intra|mid|micro|multi|neo|non|over|post|pre|pro|psycho|re"
    "|semi|socio|sub|un"
)
# Abbreviations that keep their period (matched case-sensitively, single capitals are initials).
_ABBREVIATIONS = (
    "Dr|Mr|Mrs|Ms|St|Jr|Sr|Inc|Co|Corp|Ltd|vs|etc|eg|ie|No|Gen|Gov|Lt|Col|Rev|Sen|Rep|Ft|Mt|Ave"
    "|Blvd|Attn|Prof|Capt|Sgt|Dept|dept|approx|ext|lb|oz|mins|yrs|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep"
    "|Sept|Oct|Nov|Dec|Mon|Tue|Tues|Wed|Thu|Thur|Thurs|Fri|Sat|Sun"
)
# Words EWT splits although they have no apostrophe: surface -> first-part length.
_FUSED = {
    "cannot": 3, "gonna": 3, "wanna": 3, "gotta": 3, "outta": 3, "alot": 1,
    "im": 1, "ive": 1, "lets": 3, "thats": 4, "hes": 2, "youre": 3, "theyre": 4, "theres": 5,
    "whats": 4,
}  # fmt: skip
# `its` is `it s` (a typo for it's) before these words, else the possessive.
_ITS_IS_BEFORE = {
    "a", "an", "the", "not", "been", "so", "too", "very", "really", "just", "still", "also", "only",
    "all", "like", "simply", "kind", "in", "for", "from", "now", "definitely", "going", "getting",
    "gonna", "your", "my",
}  # fmt: skip

# Whitespace, control and invisible format characters separate chunks.
_CHUNK = re.compile(r"[^\s\x00-\x1f\x7f-\x9f\u200b\u200e\u200f\u2060\ufeff]+")
# URLs, e-mail addresses and file names stay whole within delimiters, less trailing punctuation.
_LINK = re.compile(
    r"://|\w@|@\w|^www\.|\.(?:docx?|xlsx?|pdf|txt|html?|pptx?|jpe?g|gif|png|zip|url|csv)\b",
    re.IGNORECASE,
)
_SEGMENT = re.compile(r"(?<![^\"<>()\[\]{}“”‘’,;])[^\"<>()\[\]{}“”‘’,;]+")
_LINK_LEAD, _LINK_TRAIL = "'`", ".,;:!?'`"
# Units split off a number (`5 pm`, `65 k`); other letters stay on it (`3G`, `2nd`).
_UNITS = "am|pm|AM|PM|k|K|m|mm|cm|km|ft|kg|lbs?|mg|Hz|x|hh|hrs?|mins?|minutes|watts?|sq|p|F|C|f"
_TOKEN = re.compile(
    rf"""
    [:;=][-o^']?[()\[\]DPpO/\\|*](?!\w)            # emoticons :) ;-( :D
    | \(:(?!\w) | \^_\^
    | (?:{_ABBREVIATIONS})\.(?![\w.]) | [A-Z]\.(?![\w.])  # Dr. etc. J.
    | \d+(?:-\d+){{2,}}                             # phone numbers 713-654-0365
    | \d{{1,3}}-\d{{4,}}|\d{{5,}}-\d{{4,}}          # 345-9945, zip+4 (not 1969-1970)
    | \d(?=/\d(?![\d/]))                            # fractions split: 1 / 2
    | \d+(?:[.,:/]\d+)+                             # 3.5 1,000 10:30 9/11
    | \d+(?=(?:{_UNITS})(?![^\W\d_])) | \d+[^\W\d_]\w*  # 5 pm, but 2nd 1980s 3G
    | \d+(?:['’]s)? | \+\d+                          # 1970's +44
    | ['’‘]\d\d(?!\w)                               # '72
    | [^\W\d_](?:\.[^\W\d_])+\.?(?![\w.])            # U.S. a.m. a.k.a
    | \w+(?:\.\w+)+                                 # www.x.com alt.animals
    | [^\W\d_]/\w+ | [A-Z]+&[A-Z]+ | \#[^\W\d_]\w*   # w/o AT&T #hashtag
    | (?i:{_PREFIXES})-\w+                          # e-mail non-stop
    | \w+(?:['’`]\w+)*                              # words, O'Connell, don't (split below)
    | ['’`](?:s|m|d|ll|re|ve|S|M|D|LL|RE|VE)(?!\w)  # detached clitic: mama`s
    | \.{{2,}} | [.!?…]{{2,}}                        # ... ?! .?
    | ‘’|’’|‘‘ | [-=*~+|_]{{2,}}                    # '' ‘’ ---=
    | [\U0001F1E6-\U0001F1FF]{{2}}                  # flag emoji
    | ([^\w\s])\1*                                  # !!! -- ** <<, or any other one character
    """,
    re.VERBOSE,
)
_CLITIC = re.compile(r"(?i)(.+?)(n['’]t|nt|['’`](?:s|m|d|ll|re|ve))")
_NT_HOSTS = re.compile(
    r"(?i)ai|are|ca|could|did|does|do|had|has|have|is|must|need|should|was|were|wo|would"
)
# Emoji joiner, variation selector and skin tones glue to their neighbour, like combining marks.
_JOINERS = "\u200d\ufe0f\U0001f3fb\U0001f3fc\U0001f3fd\U0001f3fe\U0001f3ff"


class Token(NamedTuple):
    """One word: `text == source[start:end]`, `end` exclusive. A named tuple: requests make
    thousands, and a frozen dataclass costs several times more to build."""

    text: str
    start: int
    end: int


Span = tuple[str, int, int]  # a Token before it is one: (text, start, end)


class Tokens(Sequence[Token]):
    """A text's words as two int32 arrays of offsets into it: 8 bytes a word, where a list of
    `Token`s costs about 230 (a 2 MB text has 400,000 words and may have 2,000,000). A `Token`
    is made when one is read; `words(a, b)` gives the texts of a run of them."""

    __slots__ = ("source", "starts", "ends")

    def __init__(self, source: str, starts: array[int], ends: array[int]) -> None:
        self.source = source
        self.starts = starts
        self.ends = ends

    def __len__(self) -> int:
        return len(self.starts)

    @overload
    def __getitem__(self, i: int) -> Token: ...
    @overload
    def __getitem__(self, i: slice) -> list[Token]: ...
    def __getitem__(self, i: int | slice) -> Token | list[Token]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        s, e = self.starts[i], self.ends[i]
        return Token(self.source[s:e], s, e)

    def __iter__(self) -> Iterator[Token]:
        source = self.source
        for s, e in zip(self.starts, self.ends, strict=True):
            yield Token(source[s:e], s, e)

    def words(self, a: int = 0, b: int | None = None) -> list[str]:
        """The texts of words [a, b)."""
        source = self.source
        stop = len(self) if b is None else b
        return [source[self.starts[k] : self.ends[k]] for k in range(a, stop)]


def tokenize(text: str) -> Tokens:
    """Split `text` into EWT-style words with offsets; never raises, linear time, and no
    Python object per word is kept."""
    starts, ends = array("i"), array("i")  # int32: a text is far under 2**31 characters
    for _, start, end in _spans(text):
        starts.append(start)
        ends.append(end)
    tokens = Tokens(text, starts, ends)
    k = _final_abbreviation(len(tokens), lambda i: tokens[i].text)
    if k is not None:  # word k, [s, e), becomes [s, e - 1) and [e - 1, e)
        starts.insert(k + 1, ends[k] - 1)
        ends.insert(k, ends[k] - 1)
    return tokens


def split_words(text: str) -> list[str]:
    """The words of `tokenize(text)`, without building tokens (embedding needs no offsets)."""
    return [span[0] for span in _text_spans(text)]


def chunks(text: str) -> list[str] | None:
    """The whitespace-separated chunks `tokenize` splits one at a time, when `split_words(text)`
    is their `chunk_words` in turn but for one thing: a final abbreviation's period becomes a
    word of its own (`etc.` -> `etc .`). None when the rule across chunks may apply (`its`
    before some words is `it s`)."""
    if "its" in text.lower():  # in 2% of EWT sentences
        return None
    if text.isascii() and text.isprintable():  # only spaces separate: str.split, far faster
        return text.split()
    return _CHUNK.findall(text)


def chunk_words(chunk: str) -> list[str]:
    """The words of one chunk (no whitespace in it), before the rules across chunks."""
    return [span[0] for span in _chunk_spans(chunk)]


def _text_spans(text: str) -> list[Span]:
    """Every chunk's spans, offsets into the text, then the rules across chunks."""
    spans = list(_spans(text))
    i = _final_abbreviation(len(spans), lambda k: spans[k][0])
    if i is not None:
        spans[i : i + 1] = _cut(spans[i], len(spans[i][0]) - 1)
    return spans


def _spans(text: str) -> Iterator[Span]:
    """Every chunk's spans, offsets into the text, `its` split where the next word says so;
    one at a time, so a long text never has all its spans at once."""
    found = (
        (word, m.start() + start, m.start() + end)
        for m in _CHUNK.finditer(text)
        for word, start, end in _chunk_spans(m.group())
    )
    prev = next(found, None)
    if prev is None:
        return
    for t in found:
        yield from _its(prev, t[0].lower())
        prev = t
    yield from _its(prev, "")


def _its(t: Span, after: str) -> list[Span]:
    return _cut(t, 2) if t[0].lower() == "its" and after in _ITS_IS_BEFORE else [t]


def _chunk_spans(chunk: str) -> Iterable[Span]:
    """The spans of a chunk, offsets into the chunk. Short chunks are cached: they repeat
    (`the`, `Paris.`), and splitting them is most of the tokenizer's time on the request path.
    Long ones (rare, and they would bloat the cache) are split each time, one span at a time:
    a 2 MB chunk with no space in it may hold a million words."""
    return _cached_link_spans(chunk) if len(chunk) <= 40 else _link_spans(chunk)


def _link_spans(chunk: str) -> Iterator[Span]:
    """Spans of one chunk: links whole, the parts around them by the `_TOKEN` rules."""
    done = 0  # chunk[:done] is tokenized
    segments = _SEGMENT.finditer(chunk) if _LINK.search(chunk) else ()
    for seg in segments:
        if not _LINK.search(seg.group()):
            continue
        start = seg.end() - len(seg.group().lstrip(_LINK_LEAD))
        end = seg.start() + len(seg.group().rstrip(_LINK_TRAIL))
        if start < end:
            yield from _rule_spans(chunk[done:start], done)
            yield (chunk[start:end], start, end)
            done = end
    yield from _rule_spans(chunk[done:], done)


@lru_cache(maxsize=100_000)
def _cached_link_spans(chunk: str) -> tuple[Span, ...]:
    return tuple(_link_spans(chunk))


def _rule_spans(part: str, offset: int) -> Iterator[Span]:
    """Spans of a link-free part of a chunk; combining marks and emoji joiners stay attached."""
    word: list[int] | None = None  # [start, end) of the word being matched
    for m in _TOKEN.finditer(part):
        s, e = m.span()
        if word is not None and _attaches(part[s - 1], part[s]):  # matches tile the part
            word[1] = e
            continue
        if word is not None:
            yield from _split_clitics(part[word[0] : word[1]], offset + word[0])
        word = [s, e]
    if word is not None:
        yield from _split_clitics(part[word[0] : word[1]], offset + word[0])


def _attaches(before: str, c: str) -> bool:
    """Whether `c` continues the token ending in `before` (`e` + U+0301, emoji ZWJ sequences)."""
    if c in _JOINERS or before == "\u200d" or unicodedata.category(c)[0] == "M":
        return True
    return c.isalnum() and unicodedata.category(before)[0] == "M"


def _split_clitics(word: str, start: int) -> list[Span]:
    """Split clitics off one matched word: `don't` -> `do n't`, `dont` -> `do nt`."""
    cut = _FUSED.get(word.lower())
    m = _CLITIC.fullmatch(word) if cut is None else None
    host, clitic = m.groups() if m else ("", "")
    # `nt` without an apostrophe only after a verb that takes n't: `dont`, not `want`.
    if host[-1:].isalpha() and (clitic.lower() != "nt" or _NT_HOSTS.fullmatch(host)):
        cut = len(host)
    span = (word, start, start + len(word))
    return [span] if cut is None else _cut(span, cut)


def _cut(t: Span, n: int) -> list[Span]:
    """`t` as two spans, the first `n` characters long."""
    text, start, end = t
    return [(text[:n], start, start + n), (text[n:], start + n, end)]


def _final_abbreviation(n: int, word: Callable[[int], str]) -> int | None:
    """At the end of the text a sentence period follows: which of its `n` words (`word(i)` is
    the i-th) is an abbreviation whose period becomes a word of its own (`etc.` -> `etc .`)."""
    i = n - 1
    while i >= 0 and word(i) in {'"', "'", ")", "”", "’"}:
        i -= 1
    t = word(i) if i >= 0 else ""
    return i if len(t) > 1 and t[0].isalnum() and t.endswith(".") else None
