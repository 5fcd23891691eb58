"""Lookups in the results dict `bench.run` writes, shared by the report's targets, bounds,
tables and plots. Every lookup answers None where a phase is missing or failed."""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]

CLIENTS = 32  # the concurrency the targets are set at
LIST_CLIENTS = 8  # one sentence per request at CLIENTS is set against lists at this many ...
PER_REQUEST = 32  # ... connections, each request a list of this many sentences


def dig(row: Row | None, *keys: str) -> Any:
    """row[k1][k2]...; None where a level is missing."""
    value: Any = row
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _find(rows: list[Row], **match: Any) -> Row | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def engine_row(results: dict[str, Any], engine: str, task: str, batch_size: int) -> Row | None:
    rows = results.get("engine", {}).get("rows", [])
    return _find(rows, engine=engine, task=task, batch_size=batch_size)


def service_row(results: dict[str, Any], task: str, batching: str, clients: int) -> Row | None:
    rows = results.get("service", {}).get("rows", [])
    return _find(rows, task=task, batching=batching, clients=clients)


def single_row(results: dict[str, Any], task: str, request: str, text: str) -> Row | None:
    """The single phase's run of `task`: request "lists" or "single", text "repeated" (EWT dev
    cycled) or "novel" (corpus sentences never sent twice)."""
    rows = results.get("single", {}).get("rows", [])
    return _find(rows, task=task, request=request, text=text)


def processes_row(results: dict[str, Any], task: str, processes: int) -> Row | None:
    rows = results.get("processes", {}).get("rows", [])
    return _find(rows, task=task, processes=processes)


def cpu_ms_per_request(row: Row | None) -> float | None:
    """Server CPU-ms per answered request in a load run (server cores busy / requests per s)."""
    cpu, rps = dig(row, "server", "cpu"), dig(row, "requests_per_s")
    return 1000 * cpu / rps if cpu is not None and rps else None


def fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float | int):
        return f"{v:,.{digits}f}"
    return str(v)
