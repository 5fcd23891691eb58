"""The server side of a load run: the CPU of a process tree."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench import service


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
