"""Closed-loop HTTP load from Debian's `wrk`: N connections, each sends its next request when
its answer is in, as `bench.load` does, for a few percent of one core where the Python client
spends up to a whole one at thousands of requests per second (on 2 cores, half the machine).

`bench/wrk.lua` POSTs pre-encoded JSON bodies, one per line of a file, in order from an offset,
cycling at the end; it counts each answer's status and prints one JSON line that `parse` reads.
One wrk thread keeps the order global, so a body is repeated only once every body has been sent.
The result has `bench.load`'s fields; wrk's latencies cover every answer, not only the 2xx.
wrk takes whole seconds (`-d`), so windows are rounded to them (at least one second).
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "wrk.lua"
MARK = "bench-wrk "
TIMEOUT_S = 60  # wrk's own per-request timeout (2 s by default) would cut a slow queue short


def available() -> bool:
    return shutil.which("wrk") is not None


def write_bodies(bodies: list[bytes], path: Path) -> Path:
    """One JSON body per line, as `wrk.lua` reads them (JSON strings escape their newlines)."""
    path.write_bytes(b"\n".join(bodies) + b"\n")
    return path


def whole_seconds(seconds: float) -> int:
    return max(1, round(seconds))


def run(url: str, bodies: Path, clients: int, seconds: float, offset: int = 0) -> dict[str, Any]:
    """One closed-loop run of `clients` connections for about `seconds` (whole seconds),
    starting at body `offset`; `bench.load`'s result fields, plus the bodies sent."""
    cmd = ["wrk", "-t1", f"-c{clients}", f"-d{whole_seconds(seconds)}s"]
    cmd += [f"--timeout={TIMEOUT_S}s", "-s", str(SCRIPT), url, "--", str(bodies), str(offset)]
    before = _children_cpu()
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + TIMEOUT_S + 30, check=True
    )
    result = parse(done.stdout)
    result["client_cpu_s"] = _children_cpu() - before
    result |= {"url": url, "clients": clients, "offset": offset}
    return result


def parse(stdout: str) -> dict[str, Any]:
    """wrk.lua's line -> the fields `bench.load` gives (rates per second of wrk's own run)."""
    line = next((x for x in stdout.splitlines() if x.startswith(MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no {MARK.strip()!r} line: {stdout[-2000:]}")
    raw = json.loads(line[len(MARK) :])
    window = raw["duration_us"] / 1e6
    statuses = {str(k): v for k, v in raw["statuses"].items()}
    statuses |= {f"socket {k}": v for k, v in raw["socket_errors"].items() if v}
    ok = sum(v for k, v in statuses.items() if k.isdigit() and 200 <= int(k) < 300)
    latency = {k: v / 1000 for k, v in raw["latency_us"].items()}  # ms, as bench.load's
    return {
        "tool": "wrk",
        "window_s": window,
        "wall_s": window,
        "requests_sent": raw["sent"],
        "distinct_bodies": raw["distinct"],
        "statuses": statuses,
        "ok": ok,
        "errors": sum(statuses.values()) - ok,
        "requests_per_s": ok / window if window else 0.0,
        "latency_ms": {"count": raw["requests"], **latency},
    }


def _children_cpu() -> float:
    """CPU seconds of this process's waited-for children: wrk's, once it has exited."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
