"""Arc scores -> one dependency tree per sentence: exactly one root, no cycles.

Chu-Liu/Edmonds, not Eisner: English-EWT has non-projective trees (about 1 sentence in 20) and
Eisner can only give projective ones. Most sentences need neither: each word's best head already
makes a tree, which one argmax and a pointer-jumping check over the sentence find. The rest go
through Chu-Liu/Edmonds, with the one-root constraint of Dozat et al. (2017): if the best tree
has several root children, the ROOT_CANDIDATES of them whose root arcs score highest are each
tried as the only one, and the best total is kept. Trying every one would be exact, but a
sentence of n words could then cost n runs of Chu-Liu/Edmonds, and a request decides n.

Scores are (n + 1, n + 1) [dependent, head] with node 0 the root: row 0 is ignored, column 0 is
each word's score for being the root's child.
"""

from __future__ import annotations

import numpy as np

_NEVER = -np.inf
ROOT_CANDIDATES = 2


def tree(scores: np.ndarray) -> np.ndarray:
    """(n + 1, n + 1) scores -> (n + 1,) heads; heads[0] is 0, heads[i] in 0..n."""
    s = _prepared(scores)
    heads = s.argmax(1)
    if _is_tree(heads):
        return heads
    heads = _chu_liu_edmonds(s)
    roots = np.flatnonzero(heads[1:] == 0) + 1
    if len(roots) == 1:
        return heads
    roots = roots[np.argsort(-s[roots, 0], kind="stable")[:ROOT_CANDIDATES]]
    best, best_total = heads, _NEVER
    for r in roots:
        only = s.copy()
        only[1:, 0] = _NEVER
        only[r, 0] = s[r, 0]
        candidate = _chu_liu_edmonds(only)
        total = only[np.arange(1, len(s)), candidate[1:]].sum()
        if total > best_total:
            best, best_total = candidate, total
    return best


def _prepared(scores: np.ndarray) -> np.ndarray:
    s = np.array(scores, dtype=np.float64)
    np.fill_diagonal(s, _NEVER)
    s[0] = _NEVER
    s[0, 0] = 0.0  # the root points at itself
    return s


def _is_tree(heads: np.ndarray) -> bool:
    """One root child, and every word reaches the root: log2(n) pointer jumps."""
    if np.count_nonzero(heads[1:] == 0) != 1:
        return False
    up = heads.copy()
    for _ in range(int(np.ceil(np.log2(len(heads)))) + 1):
        up = up[up]
    return not up.any()


def _cycle(heads: np.ndarray) -> np.ndarray | None:
    """The nodes of one cycle among heads[1:], or None."""
    state = np.zeros(len(heads), dtype=np.int8)  # 0 unseen, 1 on the current path, 2 done
    state[0] = 2
    for start in range(1, len(heads)):
        path = []
        node = start
        while state[node] == 0:
            state[node] = 1
            path.append(node)
            node = heads[node]
        if state[node] == 1:
            return np.array(path[path.index(node) :])
        state[path] = 2
    return None


def _chu_liu_edmonds(s: np.ndarray) -> np.ndarray:
    """The maximum spanning arborescence from node 0 of prepared scores (recursive)."""
    heads = s.argmax(1)
    cycle = _cycle(heads)
    if cycle is None:
        return heads
    inside = np.zeros(len(s), dtype=bool)
    inside[cycle] = True
    rest = np.flatnonzero(~inside)  # rest[0] is the root
    m = len(rest)
    sub = np.full((m + 1, m + 1), _NEVER)
    sub[:m, :m] = s[np.ix_(rest, rest)]
    # an outside word whose head is in the cycle: its best head there
    leaving = s[np.ix_(rest, cycle)]
    sub[:m, m] = leaving.max(1)
    head_in_cycle = cycle[leaving.argmax(1)]
    # the cycle taking an outside head: the cycle word that gains most by breaking its arc
    entering = s[np.ix_(cycle, rest)] - s[cycle, heads[cycle]][:, None]
    sub[m, :m] = entering.max(0)
    breaker = cycle[entering.argmax(0)]
    sub_heads = _chu_liu_edmonds(sub)
    out = heads.copy()
    for i in range(1, m):
        h = sub_heads[i]
        out[rest[i]] = head_in_cycle[i] if h == m else rest[h]
    h = sub_heads[m]
    out[breaker[h]] = rest[h]
    return out
