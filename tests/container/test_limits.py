"""The stack as shipped at its size limits (issue 28): eight of the largest legal documents beside
single-sentence traffic, malformed bodies at the body limit, and clients dribbling their bodies.

In every case no server process is killed (the engine's `inspect`, uvicorn's "Child process [N]
died" in a replica's log, the kernel's log), every request is answered with a 200 or a clear 4xx
(JSON with `error` and `error_type`), /health answers throughout, and each replica's memory peak,
read from its cgroup, stays within 85% of its limit. LIMITS_REPORT, when set, names a JSON file
the figures of every case are written to.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.container.stack import ROOT, Load, Stack, memory, reset_memory_peak, wait_until

MAX_BODY = 2 * 1024 * 1024  # BIGRU_MAX_BODY_BYTES, counted on the JSON body
DOCUMENT_BYTES = 2_090_000  # a document's body is at least this, at most MAX_BODY
DOCUMENTS = 8
DOCUMENT_SECONDS = 600.0  # per document: ~110 MB of JSON to answer, on two shared cores
ALONE = 200  # single-sentence requests timed before the documents
P99_RATIO = 5.0  # their p99 beside the documents, at most this times their p99 alone
PEAK_SHARE = 0.85  # of a replica's memory limit
MALFORMED = 8  # of each malformed body, at once
SLOW_SENDERS = 10
SLOW_PIECES = 15  # 1 KB pieces a second apart: a ~15 KB body over ~15 s
JSON = {"Content-Type": "application/json"}
DATA = ROOT / os.environ.get("DATA", "../shared/data")  # the Makefile's DATA, from the root
_WORKER_DIED = re.compile(r"Child process \[\d+\] (died|failed to start)")  # uvicorn's supervisor
_KERNEL_KILL = re.compile(r"Killed process \d+ \(python|oom-kill:.*task=python")
_KERNEL_LINE = re.compile(r"^\[\s*(\d+\.\d+)\]\s?(.*)$")


@pytest.fixture(scope="module")
def report() -> Iterator[dict[str, Any]]:
    """Each case's figures, written to LIMITS_REPORT (when set) once the module is done."""
    figures: dict[str, Any] = {}
    yield figures
    if os.environ.get("LIMITS_REPORT"):
        Path(os.environ["LIMITS_REPORT"]).write_text(json.dumps(figures, indent=2) + "\n")


# --- what no case may do: kill or restart a process, fail /health, near the memory limit ---


def _kernel_log() -> list[tuple[float, str]] | None:
    """The kernel's log as (seconds since boot, text), or None where dmesg cannot be read."""
    try:
        done = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    found = (_KERNEL_LINE.match(line) for line in done.stdout.splitlines())
    return [(float(m[1]), m[2]) for m in found if m] if done.returncode == 0 else None


@dataclass
class Case:
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # what the case must not have done
    health_failures: list[str] = field(default_factory=list)
    health_polls: int = 0

    def poll_health(self, url: str, stopped: threading.Event) -> None:
        """/health through the load balancer every half second, given 5 s to answer."""
        start = time.monotonic()
        with httpx.Client(base_url=url, timeout=5, trust_env=False) as client:
            while not stopped.wait(0.5):
                try:
                    outcome: int | str = client.get("/health").status_code
                except httpx.HTTPError as error:
                    outcome = type(error).__name__
                self.health_polls += 1
                if outcome != 200:
                    self.health_failures.append(f"{time.monotonic() - start:.1f} s: {outcome}")


@contextmanager
def watched(stack: Stack, report: dict[str, Any], name: str) -> Iterator[Case]:
    """A case with /health polled throughout; after it, into report[name] and the case's
    problems: each container's state, server processes died, memory peak; the kernel's kills."""
    replicas = _serving(stack)
    names = [*replicas, stack.lb()]
    restarts = {n: int(stack.inspect(n, "{{.RestartCount}}")) for n in names}
    reset = {n: reset_memory_peak(stack.memory_cgroup(n)) for n in names}
    died = {n: len(_WORKER_DIED.findall(stack.log(n))) for n in names}
    kernel = _kernel_log()
    case, start, stopped = Case(), time.monotonic(), threading.Event()
    health = threading.Thread(target=case.poll_health, args=(stack.url, stopped))
    health.start()
    try:
        yield case
    finally:
        stopped.set()
        health.join()
        case.figures["seconds"] = round(time.monotonic() - start, 1)
        case.figures["health"] = {"polls": case.health_polls, "failures": case.health_failures}
        if case.health_failures:
            case.problems.append(f"/health failed: {case.health_failures}")
        for n in names:
            _after(stack, case, n, n in replicas, restarts[n], died[n])
            case.figures[n if n in replicas else "lb"]["peak_reset"] = reset[n]
        _kernel_kills(case, kernel, [stack.inspect(n, "{{.Id}}") for n in names])
        case.figures["lb_log"] = stack.lb_log(20).splitlines()  # its errors, not its 200s
        report[name] = case.figures
        print(f"{name}: {json.dumps(case.figures)}")
        _serving(stack)  # for what follows, whatever this case did to the replicas


def _serving(stack: Stack) -> list[str]:
    """The replicas, each started again if it stopped, and served requests."""
    replicas = stack.replicas()
    for name in replicas:
        if not stack.running(name):
            stack.cli("start", name)
        stack.wait_serving(name, seconds=300)
    return replicas


def _after(stack: Stack, case: Case, name: str, replica: bool, restarts: int, died: int) -> None:
    """One container after a case: OOM-killed, restarted, server processes died, memory peak."""
    state = json.loads(stack.inspect(name, "{{json .State}}"))
    restarted = int(stack.inspect(name, "{{.RestartCount}}")) - restarts
    deaths = [line for line in stack.log(name).splitlines() if _WORKER_DIED.search(line)][died:]
    used = memory(stack.memory_cgroup(name))
    share = used["peak"] / used["limit"]
    case.figures[name if replica else "lb"] = {
        **used, "peak_share": round(share, 3), "oom_killed": state["OOMKilled"],
        "running": state["Running"], "restarts": restarted, "processes_died": deaths,
    }  # fmt: skip
    what = "replica" if replica else "load balancer"
    if state["OOMKilled"] or not state["Running"] or restarted:
        case.problems.append(f"{what} {stack.ended(name)}restarts +{restarted}")
    if deaths:
        case.problems.append(f"{what} {name}: {len(deaths)} server processes died: {deaths}")
    if replica and used["limit"] == sys.maxsize:
        case.problems.append(f"replica {name} has no memory limit")
    elif replica and share > PEAK_SHARE:
        case.problems.append(
            f"replica {name}: memory peak {used['peak'] / 2**20:.0f} MiB, {share:.0%} of its "
            f"limit of {used['limit'] / 2**20:.0f} MiB (page cache now {used['cache'] >> 20} MiB)"
        )


def _kernel_kills(case: Case, before: list[tuple[float, str]] | None, ids: list[str]) -> None:
    """The kernel's kills of python processes in the containers `ids` logged since `before`:
    its "oom-kill:" line names the container's cgroup, the "Killed process" line follows it."""
    lines = _kernel_log() if before is not None else None
    if before is None or lines is None:
        case.figures["kernel_kills"] = "dmesg cannot be read here"
        return
    since = before[-1][0] if before else -1.0
    new = [text for at, text in lines if at > since]
    kills = [
        line
        for previous, line in zip(["", *new], new, strict=False)
        if _KERNEL_KILL.search(line) and any(i in previous + line for i in ids)
    ]
    case.figures["kernel_kills"] = kills
    if kills:
        case.problems.append(f"the kernel killed python processes: {kills}")


def _idle(stack: Stack, case: Case) -> None:
    """Until the replicas' CPUs are idle: work whose client has gone, or that the load balancer
    gave up on, still runs in them and may still be killed."""
    start = time.monotonic()
    try:
        wait_until(
            lambda: all(stack.cpu_percent(n) < 10 for n in stack.replicas()),
            DOCUMENT_SECONDS,
            "the replicas idle",
        )
    except TimeoutError as error:
        case.problems.append(str(error))
    case.figures["idle_after_s"] = round(time.monotonic() - start, 1)


def _verdict(case: Case, answers: list[dict[str, Any]], what: str) -> None:
    failed = [a for a in answers if not a["ok"]]
    assert failed == [], f"{len(failed)} of {len(answers)} {what} not a 200 or clear 4xx: {failed}"
    assert case.problems == [], "\n".join(case.problems)


# --- the traffic -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    """EWT train's sentences (its `# text = ` lines); English-like ones where the data is not."""
    path = DATA / "ud-ewt" / "en_ewt-ud-train.conllu"
    if path.exists():
        with path.open(encoding="utf-8") as lines:
            return [line[9:].strip() for line in lines if line.startswith("# text = ")]
    words = "the council said on Monday that its new plan would cut costs for small firms and "
    words += "families in the city while critics argued it was late unclear and too expensive"
    rng = random.Random(28)
    made = (" ".join(rng.choices(words.split(), k=rng.randint(6, 24))) for _ in range(20_000))
    return [sentence.capitalize() + "." for sentence in made]


def _english(sentences: list[str], chars: int) -> str:
    """Paragraphs of five sentences, a blank line between, repeated to at least `chars`."""
    paragraphs = [" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)]
    picked: list[str] = []
    size = 0
    while size < chars:
        picked.append(paragraphs[len(picked) % len(paragraphs)])
        size += len(picked[-1]) + 2
    return "\n\n".join(picked)


def _document(sentences: list[str]) -> bytes:
    """`{"inputs": text}` just under the body limit, the text cut at a word."""
    text = _english(sentences, MAX_BODY)
    body = json.dumps({"inputs": text}).encode()
    while len(body) > MAX_BODY:  # a character is at least a byte of the body
        text = text[: len(text) - (len(body) - MAX_BODY)].rsplit(" ", 1)[0]
        body = json.dumps({"inputs": text}).encode()
    assert DOCUMENT_BYTES <= len(body) <= MAX_BODY
    return body


def _clear_4xx(status: int, body: bytes) -> bool:
    """A 4xx with the service's error body: JSON with `error` and `error_type`."""
    try:
        error = json.loads(body)
    except ValueError:
        return False
    return 400 <= status < 500 and isinstance(error, dict) and {"error", "error_type"} <= {*error}


def _tag_document(url: str, body: bytes) -> dict[str, Any]:
    """One document posted, its answer read as a stream and never held: status, size, time,
    and whether it is a whole list of results (by its first and last bytes)."""
    start = time.monotonic()
    head, tail, size = b"", b"", 0
    try:
        with (
            httpx.Client(base_url=url, timeout=DOCUMENT_SECONDS, trust_env=False) as client,
            client.stream("POST", "/tag", content=body, headers=JSON) as answer,
        ):
            for chunk in answer.iter_bytes():
                head = head if len(head) >= 4096 else (head + chunk)[:4096]
                tail = (tail + chunk)[-16:]
                size += len(chunk)
            outcome: int | str = answer.status_code
    except httpx.HTTPError as error:
        outcome = type(error).__name__
    whole = head.startswith(b'[{"tokens":[') and tail.endswith(b"]}]")
    ok = (outcome == 200 and whole) or (isinstance(outcome, int) and _clear_4xx(outcome, head))
    found = {"outcome": outcome, "ok": ok, "bytes": size}
    found["seconds"] = round(time.monotonic() - start, 1)
    return found if ok else {**found, "head": head[:300].decode(errors="replace")}


def _tag(url: str, body: bytes) -> dict[str, Any]:
    """One body posted: its status, and whether the answer is a 200 or a clear 4xx."""
    try:
        with httpx.Client(base_url=url, timeout=120, trust_env=False) as client:
            answer = client.post("/tag", content=body, headers=JSON)
    except httpx.HTTPError as error:
        return {"outcome": type(error).__name__, "ok": False}
    ok = answer.status_code == 200 or _clear_4xx(answer.status_code, answer.content)
    return {"outcome": answer.status_code, "ok": ok, "body": answer.text[:200]}


def _dribble(port: int, body: bytes) -> dict[str, Any]:
    """POST /tag on a raw socket, its body sent in 1 KB pieces a second apart; the status line."""
    head = (
        f"POST /tag HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    answer, start = bytearray(), time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(head)
            for i, at in enumerate(range(0, len(body), 1024)):
                # The pace is what is tested: piece i leaves i seconds after the first.
                time.sleep(max(start + i - time.monotonic(), 0))
                sock.sendall(body[at : at + 1024])
            while chunk := sock.recv(65536):
                answer += chunk
        status = bytes(answer[:100]).split(b"\r\n", 1)[0].decode(errors="replace")
    except OSError as error:
        status = type(error).__name__
    seconds = round(time.monotonic() - start, 1)
    return {"status": status, "ok": status.split(" ")[1:2] == ["200"], "seconds": seconds}


def _p99(latencies: list[float]) -> float:
    ranked = sorted(latencies)
    return ranked[max(math.ceil(0.99 * len(ranked)) - 1, 0)] if ranked else math.nan


# --- the cases -------------------------------------------------------------------------------


def test_malformed_bodies_at_the_limit(stack: Stack, report: dict[str, Any]) -> None:
    """Eight bodies of ~524,000 one-character inputs, and eight of one sentence of as many
    one-letter words, at once: each refused with a clear 413 (or a 429: come back later)."""
    n = (MAX_BODY - len('{"tokens": [[]]}') + 1) // len('"a",')
    many_inputs = b'{"inputs": [' + b",".join([b'"a"'] * n) + b"]}"
    long_sentence = b'{"tokens": [[' + b",".join([b'"a"'] * n) + b"]]}"
    assert MAX_BODY - 8 <= len(long_sentence) <= MAX_BODY
    bodies = [many_inputs, long_sentence] * MALFORMED
    with watched(stack, report, "malformed") as case, ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda body: _tag(stack.url, body), bodies))
        case.figures.update(body_bytes=len(long_sentence), answers=answers)
    _verdict(case, answers, "malformed bodies")
    assert {a["outcome"] for a in answers} <= {413, 429}, answers


def test_slow_senders(stack: Stack, report: dict[str, Any], sentences: list[str]) -> None:
    """Ten clients each dribbling a ~15 KB body at 1 KB/s: each answered 200."""
    text = _english(sentences[1000:], SLOW_PIECES * 1024 - 20)[: SLOW_PIECES * 1024 - 20]
    body = json.dumps({"inputs": text}).encode()
    with watched(stack, report, "slow_senders") as case, ThreadPoolExecutor(SLOW_SENDERS) as pool:
        answers = list(pool.map(lambda _: _dribble(stack.port, body), range(SLOW_SENDERS)))
        case.figures.update(body_bytes=len(body), answers=answers)
    assert [a for a in answers if not a["ok"]] == [], "not answered 200"
    assert case.problems == [], "\n".join(case.problems)


def test_largest_documents_beside_single_sentences(
    stack: Stack, report: dict[str, Any], sentences: list[str]
) -> None:
    """Eight documents of 2 MiB at once, single sentences from four clients beside them: no
    error, and the sentences' p99 within 5x their p99 alone."""
    body = _document(sentences)
    with watched(stack, report, "documents") as case:
        with Load(stack.url, clients=4, limit=ALONE) as alone:
            alone.finish(seconds=300)
        with (
            Load(stack.url, clients=4, limit=10**7, seconds=DOCUMENT_SECONDS * 2) as beside,
            ThreadPoolExecutor(DOCUMENTS) as pool,
        ):
            documents = list(pool.map(lambda _: _tag_document(stack.url, body), range(DOCUMENTS)))
        _idle(stack, case)
        p99_alone, p99_beside = _p99(alone.latencies), _p99(beside.latencies)
        failed = Counter(map(str, alone.failures() + beside.failures()))
        case.figures.update(
            body_bytes=len(body),
            documents=documents,
            sentences_alone={"requests": len(alone.outcomes), "p99_s": p99_alone},
            sentences_beside={"requests": len(beside.outcomes), "p99_s": p99_beside},
            sentences_failed=dict(failed),
            p99_ratio=p99_beside / p99_alone,
        )
    print(f"single sentences' p99: alone {p99_alone * 1000:.1f} ms, beside the documents "
          f"{p99_beside * 1000:.1f} ms ({p99_beside / p99_alone:.1f}x)")  # fmt: skip
    _verdict(case, documents, "documents")
    assert failed == {}, f"single sentences failed beside the documents: {dict(failed)}"
    assert p99_beside <= P99_RATIO * p99_alone, f"p99 {p99_beside / p99_alone:.1f}x alone"
