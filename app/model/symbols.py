"""Emoji and other pictographs, labelled by rule rather than by the model.

UD tags a pictograph SYM, with no features, its lemma the word itself (EWT's XPOS for one is
NFP). English-EWT's training data holds almost none, so the heads guess from pieces they never
learned (🎉 came back NUM, 👩‍👩‍👧 PUNCT). A word is a pictograph when every character is a
symbol from the arrows block on (U+2190: arrows, dingbats, the emoji planes) or a character
that joins or modifies one (zero-width joiner, variation selectors, keycap, skin tones).
"""

from __future__ import annotations

import unicodedata

# What a pictograph's word gets, per head, where the head has that label
RULE = {"upos": "SYM", "xpos": "NFP", "feats": "_"}
_FIRST = 0x2190  # symbols before the arrows block are currency, letterlike, math and the like
_JOINING = frozenset("\u200d\ufe0e\ufe0f\u20e3")
_SKIN_TONES = range(0x1F3FB, 0x1F400)


def is_pictograph(word: str) -> bool:
    if word.isascii():
        return False
    seen = False
    for ch in word:
        if ch in _JOINING or ord(ch) in _SKIN_TONES:
            continue
        if unicodedata.category(ch) != "So" or ord(ch) < _FIRST:
            return False
        seen = True
    return seen


def pictographs(words: list[str]) -> list[int]:
    """The places of the pictographs among `words`."""
    return [i for i, w in enumerate(words) if not w.isascii() and is_pictograph(w)]
