"""PNG plots of a results dict (matplotlib, Agg): service throughput and latency percentiles vs
concurrent clients with batching on and off, and the engines' pieces/s vs batch size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.rows import CLIENTS, dig


def plot(results: dict[str, Any], prefix: Path) -> list[Path]:
    """PNG plots next to the results: service throughput and latency vs clients, engine rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    rows = results.get("service", {}).get("rows", [])
    if rows:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, task in zip(axes, ("tag", "embed"), strict=True):
            for batching, style in (("on", "o-"), ("off", "s--")):
                pts = sorted(
                    (r["clients"], r["sentences_per_s"])
                    for r in rows
                    if r["task"] == task and r["batching"] == batching
                )
                if pts:
                    ax.plot(*zip(*pts, strict=True), style, label=f"batching {batching}")
            ceil = dig(results.get("ceiling", {}).get(task), "sentences_per_s")
            if ceil:
                ax.axhline(ceil, color="gray", ls=":", label=f"raw ORT ceiling ({CLIENTS} clients)")
            ax.set(
                title=f"/{task}", xlabel="concurrent clients", ylabel="sentences/s", ylim=(0, None)
            )
            _log2_ticks(ax, [r["clients"] for r in rows])
            ax.legend()
        written.append(_save(fig, prefix.with_name(prefix.name + "-throughput.png")))
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, task in zip(axes, ("tag", "embed"), strict=True):
            for batching, ls in (("on", "-"), ("off", "--")):
                sel = sorted(
                    (r for r in rows if r["task"] == task and r["batching"] == batching),
                    key=lambda r: r["clients"],
                )
                for q, marker in (("p50", "o"), ("p95", "^"), ("p99", "s")):
                    xs = [r["clients"] for r in sel]
                    ys = [r["latency_ms"][q] for r in sel]
                    ax.plot(xs, ys, ls=ls, marker=marker, label=f"{q}, batching {batching}")
            if task == "tag":
                ax.axhline(50, color="gray", ls=":", label="p99 target at 8 clients")
            ax.set(title=f"/{task} latency", xlabel="concurrent clients", ylabel="ms", yscale="log")
            _log2_ticks(ax, [r["clients"] for r in rows])
            ax.legend(fontsize=7)
        written.append(_save(fig, prefix.with_name(prefix.name + "-latency.png")))
    engine_rows = results.get("engine", {}).get("rows", [])
    if engine_rows:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, task in zip(axes, ("tag", "embed"), strict=True):
            for engine, style in (("ort", "o-"), ("torch", "s--")):
                label = {"ort": "ONNX Runtime", "torch": "PyTorch eager"}[engine]
                pts = sorted(
                    (r["batch_size"], r["pieces_per_s"])
                    for r in engine_rows
                    if r["task"] == task and r["engine"] == engine
                )
                if pts:
                    ax.plot(*zip(*pts, strict=True), style, label=label)
            ax.set(title=f"{task} path", xlabel="batch size", ylabel="pieces/s", ylim=(0, None))
            _log2_ticks(ax, [r["batch_size"] for r in engine_rows])
            ax.legend()
        written.append(_save(fig, prefix.with_name(prefix.name + "-engine.png")))
    return written


def _log2_ticks(ax: Any, values: list[int]) -> None:
    """A log2 x axis labelled with the measured values only (1, 8, 32, 128)."""
    ticks = sorted(set(values))
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
