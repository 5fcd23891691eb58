"""What no case of tests/container/test_limits.py may do, watched around each: kill or restart
a server process (the engine's `inspect`, uvicorn's "Child process [N] died" in a replica's
log, the kernel's log), fail /health, or take a replica's memory past 85% of its limit (read
from its cgroup)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.container.stack import Stack, memory, reset_memory_peak, wait_until

PEAK_SHARE = 0.85  # of a replica's memory limit
IDLE_SECONDS = 600.0  # for the replicas to finish work nobody waits for any more
_WORKER_DIED = re.compile(r"Child process \[\d+\] (died|failed to start)")  # uvicorn's supervisor
_KERNEL_KILL = re.compile(r"Killed process \d+ \(python|oom-kill:.*task=python")
_KERNEL_LINE = re.compile(r"^\[\s*(\d+\.\d+)\]\s?(.*)$")


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


def idle(stack: Stack, case: Case) -> None:
    """Until the replicas' CPUs are idle: work whose client has gone, or that the load balancer
    gave up on, still runs in them and may still be killed."""
    start = time.monotonic()
    try:
        wait_until(
            lambda: all(stack.cpu_percent(n) < 10 for n in stack.replicas()),
            IDLE_SECONDS,
            "the replicas idle",
        )
    except TimeoutError as error:
        case.problems.append(str(error))
    case.figures["idle_after_s"] = round(time.monotonic() - start, 1)


def verdict(case: Case, answers: list[dict[str, Any]], what: str) -> None:
    failed = [a for a in answers if not a["ok"]]
    assert failed == [], f"{len(failed)} of {len(answers)} {what} not a 200 or clear 4xx: {failed}"
    assert case.problems == [], "\n".join(case.problems)
