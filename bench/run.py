"""`python -m bench.run [--quick] [--only PHASES]`: every measurement in one run, then its report
(the phases and their order: bench/README.md)."""

import argparse
import datetime
import functools
import gc
import itertools
import os
import platform
import socket
import subprocess
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

from app.model.backend import OnnxBackend
from bench import DATA, MODEL, ROOT, costs, load, peers, report, runtimes, service, targets
from bench.probes import flops
from bench.report import log
from bench.targets import CLIENTS, LIST_CLIENTS, PER_REQUEST, TASKS

WORDS_SAMPLE = 20_000  # texts whose tokens are counted for the words/s of /tag


@dataclass(frozen=True)
class Plan:
    """Sizes and time budgets; the full plan fits in ~8 minutes on 2 cores, --quick in one."""

    batch_sizes: tuple[int, ...] = (1, 8, 32, 128)
    clients: tuple[int, ...] = (1, 8, 32, 128)
    engine_s: float = 3.0  # per (engine, path, batch size)
    warmup_s: float = 1.0  # per HTTP run, not counted
    service_s: float = 7.0  # measured window per HTTP run
    teacher_s: float = 6.0
    matmul_n: int = 1024
    matmul_s: float = 2.0
    list_clients: int = 16  # /embed with lists of sentences against the teacher: clients
    list_s: float = 14.0  # its window, twice the others: list runs vary more
    novel_texts: int = 200_000  # corpus sentences for the novel-text runs, half per route
    processes: tuple[int, ...] = (1, 2)  # BIGRU_PROCESSES settings, one server each
    p50_rounds: int = 3  # costs: the 1-client p50 of the defaults against 1 process, in rounds
    p50_s: float = 3.0  # of this many seconds
    spacy_s: float = 5.0  # per spaCy pipeline
    spacy_sentences: int | None = None  # EWT dev sentences it runs over (None: all)
    workers: int = len(os.sched_getaffinity(0))  # each server's ORT runs at once
    cache: Path = ROOT / "cache" / "bench"  # the teacher's export

    @property
    def env(self) -> dict[str, str]:
        """The servers' ORT settings, stated, so the ceiling runs as they do."""
        return {"BIGRU_WORKERS": str(self.workers), "BIGRU_INTRA_OP_THREADS": "1"}

    @property
    def window(self) -> tuple[float, float]:
        """An HTTP run's warm-up and measured seconds."""
        return self.warmup_s, self.service_s


QUICK = dict(batch_sizes=(1, 32), clients=(8, 32), engine_s=0.2, warmup_s=0.2, service_s=0.6,
             teacher_s=0.3, list_s=0.6, matmul_n=256, matmul_s=0.2, novel_texts=20_000,
             spacy_s=0.2, spacy_sentences=200, p50_rounds=1, p50_s=0.3)  # fmt: skip


class Setup(NamedTuple):
    """What every phase runs on: the model, the data folder, EWT dev, a scratch folder."""

    model_dir: Path
    data: Path
    dev: list[str]  # EWT dev sentences
    features: list[runtimes.Features]  # theirs
    tmp: Path


def peak(results: dict, plan: Plan, s: Setup) -> None:
    as_is = flops.matmul_peak(plan.matmul_n, plan.matmul_s)
    one = flops.matmul_peak_single_thread(plan.matmul_n, plan.matmul_s)
    log("peak", f"numpy matmul: {as_is['gflops']:.1f} GFLOP/s, one thread {one['gflops']:.1f}")
    results["peak"] = {"as_is": as_is, "single_thread": one}


def count_flops(results: dict, plan: Plan, s: Setup) -> None:
    results["flops"] = counted = flops.count_flops(s.model_dir / "model.onnx")
    log("flops", f"per piece and sentence: {counted['per_path']}")


def engine(results: dict, plan: Plan, s: Setup, name: str) -> None:
    """The model alone at each batch size on every core: ORT (the service's session class), or
    PyTorch eager on the weights read back from model.onnx (tests/training checks the parity)."""
    threads, section = len(os.sched_getaffinity(0)), results.setdefault("engine", {"rows": []})
    if name == "torch":
        import torch

        from training.recover import recover

        torch.set_num_threads(threads)
        runner, model = runtimes.torch_runner, recover(s.model_dir)[0]
        section["notes"] = [f"PyTorch {torch.__version__} eager, packed GRU, inference_mode, "
                            f"{threads} threads, the weights of model.onnx"]  # fmt: skip
    else:
        runner, model = runtimes.ort_runner, OnnxBackend(s.model_dir, ["cpu"], threads)
    for task, B in itertools.product(TASKS, plan.batch_sizes):
        batches = runtimes.length_sorted_batches(s.features, B)
        rate = runtimes.measure(runner(model, task), batches, plan.engine_s).as_dict()
        section["rows"].append({"engine": name, "task": task, "batch_size": B, "threads": threads})
        section["rows"][-1] |= rate
        log("engine", f"{name:5} {task:5} B={B:<3} {rate['pieces_per_s']:>9,.0f} pieces/s")


def batching(results: dict, plan: Plan, s: Setup) -> None:
    """Both routes at every client count, batching on, then off (`BIGRU_MAX_BATCH_SIZE=1`)."""
    rows = results.setdefault("service", {}).setdefault("rows", [])
    for on, env in (("on", {}), ("off", {"BIGRU_MAX_BATCH_SIZE": "1"})):
        log_path = s.tmp / f"server-batching-{on}.log"
        with service.server(s.model_dir, plan.env | env, log_path) as srv:
            for task, n in itertools.product(TASKS, plan.clients):
                rows.append({"task": task, "batching": on, **srv.load(task, n, s.dev, plan.window)})


def single(results: dict, plan: Plan, s: Setup) -> None:
    """One server; per route, lists of PER_REQUEST sentences at LIST_CLIENTS connections, then
    one sentence per request at CLIENTS on repeated text, then on novel text (the two routes
    get disjoint halves of the pool, and the load never wraps around it unless it runs dry)."""
    novel = runtimes.novel_texts(s.data, plan.novel_texts)
    pools = {"tag": novel[: len(novel) // 2], "embed": novel[len(novel) // 2 :]}
    rows = results.setdefault("single", {}).setdefault("rows", [])
    with service.server(s.model_dir, plan.env, s.tmp / "server-single.log") as srv:
        for task in TASKS:
            for request, text, clients, per, sent in (
                ("lists", "repeated", LIST_CLIENTS, PER_REQUEST, s.dev),
                ("single", "repeated", CLIENTS, 1, s.dev),
                ("single", "novel", CLIENTS, 1, pools[task]),
            ):
                r = srv.load(task, clients, sent, plan.window, per)
                rows.append(row := {"task": task, "request": request, "text": text, **r})
                if task == "tag":  # /tag answers with one token per word
                    words = runtimes.words_per_text(sent[:WORDS_SAMPLE])
                    row["words_per_s"] = r["sentences_per_s"] * words


def processes(results: dict, plan: Plan, s: Setup) -> None:
    """One sentence per request on repeated text, a fresh server per `BIGRU_PROCESSES` setting
    with the service's own default of workers per process."""
    section = results.setdefault("processes", {"settings": list(plan.processes), "rows": []})
    for n in plan.processes:
        log_path = s.tmp / f"server-processes-{n}.log"
        with service.server(s.model_dir, {"BIGRU_PROCESSES": str(n)}, log_path) as srv:
            for task in TASKS:
                r = srv.load(task, CLIENTS, s.dev, plan.window)
                section["rows"].append({"task": task, "processes": n, **r})


PHASES = {  # name (for --only) -> phase(results, plan, setup), in the order they run
    "peak": peak,
    "flops": count_flops,
    "ort": functools.partial(engine, name="ort"),
    "service": batching,
    "ceiling": costs.ceiling,
    "single": single,
    "processes": processes,
    "costs": costs.phase,
    "spacy": lambda results, plan, s: peers.spacy_phase(results, plan, s.data),
    "torch": functools.partial(engine, name="torch"),
    "peer": peers.teacher_phase,
}


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny budgets: a smoke test (~1 min)")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--model-dir", type=Path, default=MODEL)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--only", help="comma-separated phases to run, e.g. processes,costs")
    args = p.parse_args(argv)
    args.model_dir = args.model_dir.resolve()
    if not (args.model_dir / "model.onnx").is_file():
        raise SystemExit(f"bench: no model.onnx in {args.model_dir} (--model-dir)")
    return args


def _start(args: argparse.Namespace, plan: Plan) -> dict[str, Any]:
    """The results before any phase: what ran where (machine, versions, commit), the plan, and
    notes on the conditions."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    names = [x.split(":", 1)[1].strip() for x in cpuinfo.splitlines() if x.startswith("model name")]
    machine = {"cpu": (names or [platform.processor() or "unknown CPU"])[0],
               "cores": len(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(),
               "loadavg_start": os.getloadavg()[0], "platform": platform.platform(),
               "python": platform.python_version()}  # fmt: skip
    installed = {d.metadata["Name"].lower(): d.version for d in metadata.distributions()}
    machine |= {
        p: installed.get(p) for p in ("onnxruntime", "torch", "numpy", "fastapi", "uvicorn")
    }
    notes = ["--quick: tiny budgets, a smoke test; the numbers mean little"] if args.quick else []
    if machine["loadavg_start"] > 0.5:
        notes.append(f"the machine was busy at start (load average {machine['loadavg_start']:.2f})")
    git = functools.partial(subprocess.run, cwd=ROOT, capture_output=True, text=True)
    rev = git(["git", "rev-parse", "--short", "HEAD"]).stdout.strip() or "unknown"
    dirty = git(["git", "status", "--porcelain"]).stdout.strip()
    meta = {"date": datetime.date.today().isoformat(), "host": socket.gethostname(),
            "quick": args.quick, "git": rev + "+dirty" * bool(dirty),
            "model_dir": str(args.model_dir), "data": str(args.data)}  # fmt: skip
    plan_facts = asdict(plan) | {"load_tool": "wrk" if load.wrk_available() else "python"}
    return {"meta": meta, "machine": machine, "plan": plan_facts, "notes": notes, "errors": {},
            "service_settings": {"workers": plan.workers, "intra_op_threads": 1}}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    plan = replace(Plan(), **QUICK) if args.quick else Plan()
    started, results = time.time(), _start(args, plan)
    corpus = runtimes.load_corpus(args.data, args.model_dir / "vocab.txt")
    n, pieces = len(corpus.texts), corpus.pieces
    results["corpus"] = {"file": str(args.data / runtimes.EWT_DEV), "sentences": n,
                         "pieces": pieces, "mean_pieces": pieces / n}  # fmt: skip
    meta, machine = results["meta"], results["machine"]
    stem = f"{meta['date']}-{meta['host']}" + ("-quick" if args.quick else "")
    stem += f"-{args.only.replace(',', '-')}" if args.only else ""
    tool, load_avg = results["plan"]["load_tool"], machine["loadavg_start"]
    log("start", f"{stem}: {machine['cpu']}, {machine['cores']} cores, load average "
               f"{load_avg:.2f}, HTTP load by {tool}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bigru-bench-") as tmp:
        setup = Setup(args.model_dir, args.data, corpus.texts, corpus.features, Path(tmp))
        for name, phase in PHASES.items():
            if args.only and name not in args.only.split(","):
                continue
            try:
                phase(results, plan, setup)
            except Exception as e:  # one failed phase leaves the others' numbers
                results["errors"][name] = f"{type(e).__name__}: {e}"
                log(name, f"FAILED: {e}\n{traceback.format_exc()}")
            gc.collect()  # drop the phase's sessions and their thread pools
    meta["duration_s"] = time.time() - started
    results["summary"] = summary = targets.summarize(results)
    written = report.write_run(results, summary, args.out / stem)
    log("done", f"{', '.join(p.name for p in written)} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
