"""`python -m bench.models`: several models in one server (BIGRU_MODELS_DIR), measured.

- memory: a server process's resident memory, idle once warmed up, with 1, 2 and 4 models
  loaded (copies of one model folder under other names: each is loaded on its own, as any
  model is), one process (`BIGRU_PROCESSES=1`);
- fairness: model B's one-sentence /tag latency, one client, alone and while 16 clients flood
  model A (single sentences, then lists of 32), with the server's default settings; the target
  is B's p99 under the flood at most 3x its p99 alone.

Results go to bench/results/<date>-models.json and to stdout as a table.
"""

import argparse
import datetime
import json
import tempfile
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from bench import DATA, MODEL, ROOT, load, service
from bench.report import log

FLOOD_CLIENTS = 16
FAIRNESS_LIMIT = 3.0  # B's p99 under a flood on A, over its p99 alone


def repository(root: Path, model: Path, count: int) -> Path:
    """A models folder of `count` models: `model` under its own name, then copies by link."""
    folder = root / f"models-{count}"
    if folder.exists():
        return folder
    folder.mkdir()
    for i in range(count):
        (folder / (model.name if i == 0 else f"{model.name}-{i + 1}")).symlink_to(model.resolve())
    return folder


def memory(model: Path, counts: list[int], tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for count in counts:
        env = {"BIGRU_MODELS_DIR": str(repository(tmp, model, count)), "BIGRU_PROCESSES": "1"}
        with service.server(model, env, tmp / f"memory-{count}.log") as srv:
            status = Path(f"/proc/{srv.pid}/status").read_text().splitlines()
            peak = next(int(x.split()[1]) / 1024 for x in status if x.startswith("VmHWM:"))
            rows.append({"models": count, "rss_mib": service.rss_mb(srv.pid), "peak_mib": peak})
        log("memory", f"{count} model(s): idle RSS {rows[-1]['rss_mib']:.0f} MiB, "
            f"peak {peak:.0f} MiB")  # fmt: skip
    return rows


def fairness(model: Path, texts: list[str], seconds: float, tmp: Path) -> dict[str, Any]:
    env = {"BIGRU_MODELS_DIR": str(repository(tmp, model, 2))}
    a, b = model.name, f"{model.name}-2"
    window = (1.0, seconds)
    out: dict[str, Any] = {"clients_on_a": FLOOD_CLIENTS, "seconds": seconds}
    with service.server(model, env, tmp / "fairness.log") as srv:
        url = f"{srv.base}/tag"

        def probe() -> dict[str, Any]:
            return load.run(url, texts, 1, window, 1, nullcontext, {"model": b})

        out["b_alone"] = probe()
        flood_window = (window[0], seconds + 2 * window[0])  # outlasts the probe
        for per in (1, 32):
            flood: dict[str, Any] = {}

            def on_a(per: int = per, flood: dict[str, Any] = flood) -> None:
                flood |= load.run(url, texts, FLOOD_CLIENTS, flood_window, per, nullcontext,
                                  {"model": a})  # fmt: skip

            thread = threading.Thread(target=on_a)
            thread.start()
            under = probe()
            thread.join()
            ratio = under["latency_ms"]["p99"] / out["b_alone"]["latency_ms"]["p99"]
            out[f"b_under_flood_of_{per}"] = {"b": under, "a": flood, "p99_ratio": ratio}
            log("fairness", f"B's p99 {under['latency_ms']['p99']:.1f} ms under 16 clients on A "
                f"({per} per request, {flood['sentences_per_s']:.0f} sent/s) = {ratio:.2f}x alone "
                f"({out['b_alone']['latency_ms']['p99']:.1f} ms); errors "
                f"{under['errors'] + flood['errors']}")  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--counts", default="1,2,4", help="models loaded, for the memory phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="each fairness run")
    parser.add_argument("--only", choices=("memory", "fairness"))
    args = parser.parse_args()
    rows = (args.data / "stsb" / "sts-dev.csv").read_text().splitlines()
    texts = [cols[5] for cols in (row.split("\t") for row in rows) if len(cols) >= 7]
    results: dict[str, Any] = {"date": datetime.date.today().isoformat()}
    with tempfile.TemporaryDirectory(prefix="bigru-models-") as tmp:
        if args.only in (None, "memory"):
            counts = [int(c) for c in args.counts.split(",")]
            results["memory"] = memory(args.model, counts, Path(tmp))
        if args.only in (None, "fairness"):
            results["fairness"] = fairness(args.model, texts, args.seconds, Path(tmp))
    out = ROOT / "bench" / "results" / f"{results['date']}-models.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    log("models", f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
