"""The server side of a load run: CPU of a process tree, and bench.recorded's batches."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import recorded, service


@pytest.mark.slow  # a subprocess
def test_cpu_seconds_counts_the_process_tree() -> None:
    """A parent that only waits on a child that burns 0.3 s of CPU: the child's time is in the
    parent's tree while it runs, and stays there once the parent has reaped it."""
    child = (
        "import sys, time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
        "print('burnt', flush=True)\nsys.stdin.read()"
    )
    parent = (
        f"import subprocess, sys, time\nsubprocess.run([sys.executable, '-c', {child!r}])\n"
        "print('reaped', flush=True)\ntime.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "burnt"
        tree = service.process_tree(proc.pid)
        assert tree[0] == proc.pid and len(tree) == 2
        child_cpu = service.cpu_seconds(tree[1])
        assert child_cpu is not None and child_cpu >= 0.3
        assert (service.cpu_seconds(proc.pid) or 0) >= child_cpu
        proc.stdin.close()  # the child's read ends; the parent reaps it
        assert proc.stdout.readline().strip() == "reaped"
        assert service.process_tree(proc.pid) == [proc.pid]
        assert (service.cpu_seconds(proc.pid) or 0) >= child_cpu
    finally:
        proc.kill()
        proc.wait()
    assert service.cpu_seconds(proc.pid) is None


def test_recorded_runs_are_written_whole_and_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench.recorded: each run's feeds and outputs are kept; a write hands them over once."""
    out = tmp_path / "batches.pickle"
    monkeypatch.setenv("BIGRU_BENCH_BATCHES", str(out))
    monkeypatch.setattr(recorded, "_run", lambda self, feeds, outputs: {o: 0 for o in outputs})
    feeds = {"input_ids": np.zeros((1, 2), dtype=np.int64)}
    assert recorded._recording_run(None, feeds, ["embedding"]) == {"embedding": 0}  # type: ignore[arg-type]
    recorded.write_runs()
    ((kept, outputs),) = pickle.loads(out.read_bytes())
    assert kept["input_ids"].shape == (1, 2) and outputs == ["embedding"]
    recorded.write_runs()
    assert pickle.loads(out.read_bytes()) == []
