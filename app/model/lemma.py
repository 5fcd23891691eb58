"""Lemmas as edit scripts: a casing step, then a suffix edit, as UDPipe's and spaCy's
edit-tree lemmatizers classify them.

A script is `case|cut|suffix`: with case `k` the form is kept, with `l` it is lowercased; then
its last `cut` characters are replaced by `suffix`. `running -> run` is `k|4|`, `The -> the` is
`l|0|`, `was -> be` is `k|3|be`. The lemma head of a model is a softmax over scripts.
"""

from __future__ import annotations

IDENTITY = "k|0|"


def edit_script(form: str, lemma: str) -> str:
    """The script that turns `form` into `lemma`, keeping as much of the form as it can."""
    best = (-1, IDENTITY)
    for case, base in (("k", form), ("l", form.lower())):
        p = 0
        while p < min(len(base), len(lemma)) and base[p] == lemma[p]:
            p += 1
        if p > best[0]:
            best = (p, f"{case}|{len(base) - p}|{lemma[p:]}")
    return best[1]


def apply_script(form: str, script: str) -> str:
    """The lemma `script` makes of `form`; a cut longer than the form takes it all."""
    case, cut, suffix = script.split("|", 2)
    base = form.lower() if case == "l" else form
    return base[: max(len(base) - int(cut), 0)] + suffix
