"""Arc scores -> one dependency tree per sentence: exactly one root, no cycles.

Chu-Liu/Edmonds, not Eisner: English-EWT has non-projective trees (about 1 sentence in 20) and
Eisner can only give projective ones. Most sentences need neither: each word's best head already
makes a tree, which one argmax and a pointer-jumping check over the sentence find. The rest go
through Chu-Liu/Edmonds, with the one-root constraint of Dozat et al. (2017): if the best tree
has several root children, the ROOT_CANDIDATES of them whose root arcs score highest are each
tried as the only one, and the best total is kept. Trying every one would be exact, but a
sentence of n words could then cost n runs of Chu-Liu/Edmonds, and a request decides n.

A sentence of more than EXACT_WORDS words whose best heads make no tree is repaired greedily
(`_greedy`), so that no sentence costs more than about 100^3 steps.

Scores are (n + 1, n + 1) [dependent, head] with node 0 the root: row 0 is ignored, column 0 is
each word's score for being the root's child.
"""

from __future__ import annotations

import numpy as np

_NEVER = -np.inf
ROOT_CANDIDATES = 2
# Chu-Liu/Edmonds costs up to n contractions of an n x n matrix: past this many words a sentence
# whose best heads make no tree is repaired greedily instead, in n steps of n.
EXACT_WORDS = 100


def tree(scores: np.ndarray) -> np.ndarray:
    """(n + 1, n + 1) scores -> (n + 1,) heads; heads[0] is 0, heads[i] in 0..n."""
    s = _prepared(scores)
    heads = s.argmax(1)
    if _is_tree(heads):
        return heads
    if len(s) - 1 > EXACT_WORDS:
        return _greedy(s)
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


def _greedy(s: np.ndarray) -> np.ndarray:
    """A tree grown from the root as Prim's algorithm grows one: the word whose root arc scores
    highest is the root's only child, then, one at a time, the word outside the tree with the
    best arc to a word inside it joins it by that arc."""
    n = len(s) - 1
    heads = np.zeros(n + 1, dtype=np.int64)
    first = int(np.argmax(s[1:, 0])) + 1
    inside = np.zeros(n + 1, dtype=bool)
    inside[[0, first]] = True
    best = s[:, first].copy()  # each word's best arc into the tree, and its head
    best_head = np.full(n + 1, first)
    for _ in range(n - 1):
        best[inside] = _NEVER
        word = int(np.argmax(best))
        heads[word], inside[word] = best_head[word], True
        better = s[:, word] > best
        best[better], best_head[better] = s[better, word], word
    heads[first] = 0
    return heads


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
    """The maximum spanning arborescence from node 0 of prepared scores. Each cycle is contracted
    in turn, keeping only what expanding it back needs (vectors), so that a sentence of n words
    holds one score matrix at a time, not one per contraction."""
    contractions = []
    while (cycle := _cycle(heads := s.argmax(1))) is not None:
        s, expand = _contract(s, heads, cycle)
        contractions.append(expand)
    for heads_before, rest, head_in_cycle, breaker in reversed(contractions):
        m = len(rest)
        out = heads_before.copy()
        inner = heads[1:m]  # the heads the contracted graph gave rest[1:]
        out[rest[1:]] = np.where(inner == m, head_in_cycle[1:], rest[np.minimum(inner, m - 1)])
        out[breaker[heads[m]]] = rest[heads[m]]
        heads = out
    return heads


def _contract(s: np.ndarray, heads: np.ndarray, cycle: np.ndarray):
    """The scores with `cycle` as one node (the last), and what expanding it back needs."""
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
    return sub, (heads, rest, head_in_cycle, breaker)
