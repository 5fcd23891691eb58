"""Closed-loop HTTP load, the one load tool: N connections, each sends its next request when its
answer is in. A request carries one sentence, or K consecutive ones (a client embedding a list).

Debian's `wrk` sends it where it is installed, for a few percent of one core: `bench/wrk.lua`
POSTs pre-encoded JSON bodies, one per line of a file, in order from an offset, cycling, counts
each answer's status and prints one JSON line that `parse_wrk` reads. One wrk thread keeps the
order global, so a body is repeated only once every body has been sent. wrk takes whole seconds.

Where wrk is missing, `python -m bench.load` is the fallback: a minimal stdlib asyncio HTTP/1.1
keep-alive connection per client, in its own process so its CPU is not the server's (up to a
core of its own at thousands of requests per second). It prints the same fields as JSON.
Loopback only, bounded by time and by request count; requests finished before the warm-up ends
are not counted. wrk's latencies cover every answer, the fallback's the 2xx only.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
QUANTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99}
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk.lua"
WRK_MARK = "bench-wrk "
WRK_TIMEOUT_S = 60  # wrk's own per-request timeout (2 s by default) would cut a slow queue short
ROOT = Path(__file__).resolve().parent.parent


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def make_bodies(texts: list[str], per_request: int) -> list[bytes]:
    """JSON request bodies: one text each, or `per_request` consecutive texts each (a short
    last group is left out, so every request carries exactly `per_request`)."""
    if per_request == 1:
        return [json.dumps({"inputs": t}).encode() for t in texts]
    groups = [texts[i : i + per_request] for i in range(0, len(texts), per_request)]
    return [json.dumps({"inputs": g}).encode() for g in groups if len(g) == per_request]


def summarize(latencies_ms: list[float]) -> dict[str, float | int | None]:
    """Count, mean, max and p50/p90/p95/p99 (linear interpolation) of latencies in ms."""
    if not latencies_ms:
        return {"count": 0, "mean": None, "max": None, **{k: None for k in QUANTILES}}
    values = np.asarray(latencies_ms, dtype=np.float64)
    out: dict[str, float | int | None] = {
        "count": len(values),
        "mean": float(values.mean()),
        "max": float(values.max()),
    }
    for name, q in QUANTILES.items():
        out[name] = float(np.percentile(values, q))
    return out


def run(
    url: str,
    texts: list[str],
    clients: int,
    warmup: float,
    seconds: float,
    per_request: int = 1,
    around: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> dict[str, Any]:
    """One closed-loop run: wrk where it is installed, else the fallback in a subprocess.
    `around()` wraps what `wall_s` covers: wrk's measured run, or the whole fallback."""
    bodies = make_bodies(texts, per_request)
    if wrk_available():
        with tempfile.TemporaryDirectory(prefix="bigru-wrk-") as tmp:
            path = Path(tmp) / "bodies"
            path.write_bytes(b"\n".join(bodies) + b"\n")  # JSON strings escape their newlines
            offset = 0
            if round(warmup) > 0:  # whole seconds only: a sub-second warm-up is left out
                offset = run_wrk(url, path, clients, warmup)["requests_sent"]
            with around():
                result = run_wrk(url, path, clients, seconds, offset)
        result["requests_sent"] += offset  # the warm-up's included, as the fallback counts them
    else:
        with around():
            result = _fallback(url, bodies, clients, warmup, seconds)
    result |= {"per_request": per_request, "warmup_s": warmup}
    result["sentences_per_s"] = result["requests_per_s"] * per_request
    result["client_cpu"] = result["client_cpu_s"] / result["wall_s"]
    return result


def run_wrk(url: str, bodies: Path, clients: int, seconds: float, offset: int = 0) -> dict:
    """`clients` connections for about `seconds` (whole seconds), from body `offset`."""
    cmd = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s"]
    cmd += [f"--timeout={WRK_TIMEOUT_S}s", "-s", str(WRK_SCRIPT), url, "--", str(bodies)]
    before = _cpu(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [*cmd, str(offset)],
        capture_output=True,
        text=True,
        timeout=seconds + WRK_TIMEOUT_S + 30,
        check=True,
    )
    result = parse_wrk(done.stdout)
    result["client_cpu_s"] = _cpu(resource.RUSAGE_CHILDREN) - before  # wrk's, once exited
    return result | {"url": url, "clients": clients, "offset": offset}


def parse_wrk(stdout: str) -> dict[str, Any]:
    """wrk.lua's line -> the result fields (rates per second of wrk's own run)."""
    line = next((x for x in stdout.splitlines() if x.startswith(WRK_MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no {WRK_MARK.strip()!r} line: {stdout[-2000:]}")
    raw = json.loads(line[len(WRK_MARK) :])
    window = raw["duration_us"] / 1e6
    statuses = {str(k): v for k, v in raw["statuses"].items()}
    statuses |= {f"socket {k}": v for k, v in raw["socket_errors"].items() if v}
    ok = sum(v for k, v in statuses.items() if k.isdigit() and 200 <= int(k) < 300)
    latency = {k: v / 1000 for k, v in raw["latency_us"].items()}  # ms
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


def _fallback(
    url: str, bodies: list[bytes], clients: int, warmup: float, seconds: float
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.load", "--url", url, "--clients", str(clients)]
    cmd += ["--warmup", str(warmup), "--seconds", str(seconds)]
    done = subprocess.run(
        cmd,
        cwd=ROOT,
        input=b"\n".join(bodies),
        capture_output=True,
        timeout=warmup + seconds + 120,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON bodies: a write and a few reads per
    request."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, body: bytes) -> int:
        """Send one request and read its whole response; returns the status code."""
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        writer.write(self.head + b"%d\r\n\r\n" % len(body) + body)
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if headers.get(b"transfer-encoding") == b"chunked":
            while size := int((await reader.readline()).split(b";")[0], 16):
                await reader.readexactly(size + 2)
            await reader.readline()
        else:
            await reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection") == b"close":
            self.close()
        return int(status_line.split()[1])

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def run_fallback(
    url: str, bodies: list[bytes], clients: int, warmup: float, seconds: float, max_requests: int
) -> dict[str, Any]:
    """The fallback's closed loop, one `Connection` per client, in this process."""
    source = itertools.cycle(bodies)  # shared: the same order whatever the client count
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    sent = 0
    cpu0 = _cpu(resource.RUSAGE_SELF)  # the loop's own CPU, not start-up and imports
    start = time.perf_counter()
    window = (start + warmup, start + warmup + seconds)

    async def client(connection: Connection) -> None:
        nonlocal sent
        while time.perf_counter() < window[1] and sent < max_requests:
            sent += 1
            t0 = time.perf_counter()
            try:
                status = str(await connection.post(next(source)))
            except (OSError, EOFError, ValueError) as e:  # reset, refused, a garbled response
                status = type(e).__name__
                connection.close()
            t1 = time.perf_counter()
            if window[0] <= t1 <= window[1]:
                statuses[status] += 1
                if status == "200":
                    latencies.append((t1 - t0) * 1000)

    connections = [Connection(url) for _ in range(clients)]  # N clients, N sockets
    await asyncio.gather(*(client(c) for c in connections))
    for c in connections:
        c.close()
    ok = statuses.get("200", 0)
    return {
        "url": url,
        "tool": "python",
        "clients": clients,
        "window_s": seconds,
        "wall_s": time.perf_counter() - start,
        "requests_sent": sent,
        "distinct_bodies": len(bodies),
        "statuses": dict(statuses),
        "ok": ok,
        "errors": sum(statuses.values()) - ok,
        "requests_per_s": ok / seconds,
        "latency_ms": summarize(latencies),
        "client_cpu_s": _cpu(resource.RUSAGE_SELF) - cpu0,
    }


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="the fallback load client; JSON bodies on stdin")
    p.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8000/tag")
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--warmup", type=float, default=1.0, help="seconds not counted")
    p.add_argument("--seconds", type=float, default=6.0, help="measured window")
    p.add_argument("--max-requests", type=int, default=200_000)
    args = p.parse_args(argv)
    if urlsplit(args.url).hostname not in LOOPBACK:
        sys.exit(f"bench.load: {args.url} is not a loopback address")
    bodies = sys.stdin.buffer.read().split(b"\n")
    result = asyncio.run(
        run_fallback(args.url, bodies, args.clients, args.warmup, args.seconds, args.max_requests)
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
