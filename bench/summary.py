"""The run's numbers, from the results dict `bench.run` writes: the targets `make bench`
checks (each a figure or a ratio of two figures from the same run, with its threshold), their
verdicts, and what bounds them (`bounds.py`). A ratio of two HTTP runs fails when either run
had errors (non-2xx answers or socket errors), whatever its value; a missing measurement is
n/a. Pure functions: a fake dict tests them.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any

from bench import bounds
from bench.rows import (
    CLIENTS,
    LIST_CLIENTS,
    PER_REQUEST,
    Row,
    dig,
    engine_row,
    ratio,
    service_row,
    single_row,
)

TASKS = ("tag", "embed")
SAME_AS_OFF = (1, 8)  # clients at which batching on must stay within 5% of off
BETTER_THAN_OFF = (32, 128)  # clients at which batching on must beat off
SINGLE_OVER_LISTS = {"tag": 0.85, "embed": 0.5}
FRONT_END_OVER_ORT = {"tag": 0.5, "embed": 1.0}
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt}


def _batching_targets() -> Iterator[tuple[str, str, str, float | None]]:
    for task in TASKS:
        for n in SAME_AS_OFF:
            what = f"/{task} batching on / off at {n} client{'s' if n > 1 else ''}"
            yield f"batching_{task}_{n}_rps", f"{what}: throughput", ">=", 0.95
            yield f"batching_{task}_{n}_p50", f"{what}: p50 latency", "<=", 1.05
            yield f"batching_{task}_{n}_p99", f"{what}: p99 latency", "<=", 1.05
        for n in BETTER_THAN_OFF:
            yield f"batching_{task}_{n}_rps", f"/{task} batching on / off at {n} clients", ">", 1.0


_SINGLE = (
    f"one sentence per request ({CLIENTS} conns) / lists of {PER_REQUEST} ({LIST_CLIENTS} conns)"
)

# (key, label, op, threshold); op "" marks a row shown for information, with no threshold
TARGETS: list[tuple[str, str, str, float | None]] = [
    ("ceiling_tag", "service /tag at 32 clients / raw ORT ceiling", ">=", 0.75),
    ("ceiling_embed", "service /embed at 32 clients / raw ORT ceiling", ">=", 0.75),
    ("batching_tag", "/tag batching on / off at 32 clients", ">=", 3.0),
    ("batching_embed", "/embed batching on / off at 32 clients", ">=", 3.0),
    ("ort_torch_tag", "ORT / PyTorch eager, tag path, batch 32", ">=", 1.5),
    ("ort_torch_embed", "ORT / PyTorch eager, embed path, batch 32", ">=", 1.5),
    ("p99_tag_8", "/tag p99 latency at 8 clients (ms)", "<=", 50.0),
    (
        "embed_vs_teacher",
        "/embed, 32 sentences per request / all-MiniLM-L6-v2 on ORT (batch 32)",
        ">=",
        10.0,
    ),
    *(
        (f"single_lists_{task}", f"/{task} {_SINGLE}, sentences/s, repeated text", ">=", t)
        for task, t in SINGLE_OVER_LISTS.items()
    ),
    *(
        (f"single_lists_{task}_novel", f"/{task} {_SINGLE}, sentences/s, novel text", "", None)
        for task in SINGLE_OVER_LISTS
    ),
    *_batching_targets(),
    *(
        (
            f"front_ort_{task}",
            f"/{task} front-end CPU per request / ORT CPU per sentence ({CLIENTS} clients)",
            "<=",
            t,
        )
        for task, t in FRONT_END_OVER_ORT.items()
    ),
    ("tag_vs_spacy", "/tag lists words/s vs spaCy sm, same run", ">=", 4.0),
    ("tag_vs_spacy_init", "/tag lists words/s vs spaCy `init config` as generated", "", None),
]


def _errors(*rows: Row | None) -> bool:
    return any(dig(r, "errors") for r in rows)


def target_values(
    results: dict[str, Any], limits: dict[str, Any]
) -> tuple[dict[str, Any], set[str]]:
    """Every target's value (and a few ratios the tables show), and the keys whose runs had
    errors."""
    sps = "sentences_per_s"
    out: dict[str, float | None] = {}
    errored: set[str] = set()
    for task in TASKS:
        on = service_row(results, task, "on", CLIENTS)
        off = service_row(results, task, "off", CLIENTS)
        out[f"ceiling_{task}"] = ratio(dig(on, sps), dig(results.get("ceiling", {}).get(task), sps))
        out[f"batching_{task}"] = ratio(dig(on, sps), dig(off, sps))
        out[f"ort_torch_{task}"] = ratio(
            dig(engine_row(results, "ort", task, 32), "pieces_per_s"),
            dig(engine_row(results, "torch", task, 32), "pieces_per_s"),
        )
        out[f"front_ort_{task}"] = dig(limits, task, "front_end_over_ort")
        if _errors(on):
            errored.add(f"front_ort_{task}")
        _single(results, task, out, errored)
        _batching(results, task, out, errored)
    out["p99_tag_8"] = dig(service_row(results, "tag", "on", 8), "latency_ms", "p99")
    teacher = dig(results.get("peer"), "teacher", sps)
    out["embed_vs_teacher"] = ratio(dig(results.get("service"), "lists", sps), teacher)
    out["embed_single_vs_teacher"] = ratio(
        dig(service_row(results, "embed", "on", CLIENTS), sps), teacher
    )
    for B in (32, 128):
        out[f"ort_embed_b{B}_vs_teacher"] = ratio(
            dig(engine_row(results, "ort", "embed", B), sps), teacher
        )
    lists = single_row(results, "tag", "lists", "repeated")
    for key, pipeline in (("tag_vs_spacy", "stand_in"), ("tag_vs_spacy_init", "init_config")):
        spacy = dig(results.get("spacy"), pipeline, "words_per_s")
        out[key] = ratio(dig(lists, "words_per_s"), spacy)
        if _errors(lists):
            errored.add(key)
    return out, errored


def _single(
    results: dict[str, Any], task: str, out: dict[str, float | None], errored: set[str]
) -> None:
    lists = single_row(results, task, "lists", "repeated")
    for text, key in (
        ("repeated", f"single_lists_{task}"),
        ("novel", f"single_lists_{task}_novel"),
    ):
        single = single_row(results, task, "single", text)
        out[key] = ratio(dig(single, "sentences_per_s"), dig(lists, "sentences_per_s"))
        if _errors(single, lists):
            errored.add(key)


def _batching(
    results: dict[str, Any], task: str, out: dict[str, float | None], errored: set[str]
) -> None:
    for n in SAME_AS_OFF + BETTER_THAN_OFF:
        on, off = service_row(results, task, "on", n), service_row(results, task, "off", n)
        keys = [f"batching_{task}_{n}_rps"]
        out[keys[0]] = ratio(dig(on, "requests_per_s"), dig(off, "requests_per_s"))
        if n in SAME_AS_OFF:
            for q in ("p50", "p99"):
                keys.append(f"batching_{task}_{n}_{q}")
                out[keys[-1]] = ratio(dig(on, "latency_ms", q), dig(off, "latency_ms", q))
        if _errors(on, off):
            errored.update(keys)


def verdicts(values: dict[str, Any], errored: set[str]) -> list[dict[str, Any]]:
    """Each target with its value and verdict: pass True/False, None when not measured or when
    the row is for information."""
    out = []
    for key, label, op, threshold in TARGETS:
        v = values.get(key)
        ok: bool | None = None
        if op and v is not None and threshold is not None:
            ok = key not in errored and _holds(v, op, threshold)
        out.append(
            {
                "key": key,
                "label": label,
                "value": v,
                "op": op,
                "threshold": threshold,
                "pass": ok,
                "errors": key in errored,
            }
        )
    return out


def _holds(v: float, op: str, threshold: float) -> bool:
    return bool(_OPS[op](v, threshold))


def verdict(target: dict[str, Any]) -> str:
    """PASS, FAIL, FAIL (errors), n/a (not measured) or info (no threshold)."""
    if not target["op"]:
        return "info"
    if target["pass"] is None:
        return "n/a"
    if target["pass"]:
        return "PASS"
    return "FAIL (errors)" if target["errors"] else "FAIL"


def threshold_text(target: dict[str, Any]) -> str:
    return f"{target['op']} {target['threshold']:g}" if target["op"] else "none (information)"


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """The ratios the issues ask for, each target with its verdict (None: not measured), and
    what bounds them."""
    limits = bounds.bounds(results)
    values, errored = target_values(results, limits)
    return {
        "ratios": values,
        "targets": verdicts(values, errored),
        "physical": bounds.physical(results),
        "bounds": limits,
    }
