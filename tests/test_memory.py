"""The memory a process's container may use, from fake cgroup files (app.memory)."""

from __future__ import annotations

import os
from pathlib import Path

from app.memory import memory_limit, rss_bytes
from tests.helpers import cgroup

GIB = 1 << 30
MEMINFO = "MemTotal:       24683436 kB\nMemFree:         1000000 kB\n"


def limit(tmp_path: Path, files: dict[str, str | bytes], own: str = "0::/\n") -> int | None:
    root, proc = cgroup(tmp_path, files, own)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(MEMINFO)
    return memory_limit(root, proc, meminfo)


def test_v2_limit(tmp_path: Path) -> None:
    assert limit(tmp_path, {"memory.max": f"{GIB}\n"}) == GIB


def test_v2_without_a_limit_is_the_machines_memory(tmp_path: Path) -> None:
    assert limit(tmp_path, {"memory.max": "max\n"}) == 24683436 * 1024


def test_v1_limit_in_the_processs_own_cgroup(tmp_path: Path) -> None:
    files = {"memory/docker/abc/memory.limit_in_bytes": f"{2 * GIB}\n"}
    assert limit(tmp_path, files, own="4:memory:/docker/abc\n0::/\n") == 2 * GIB


def test_v1_unlimited_is_the_machines_memory(tmp_path: Path) -> None:
    files = {"memory/memory.limit_in_bytes": "9223372036854771712\n"}
    assert limit(tmp_path, files, own="4:memory:/\n") == 24683436 * 1024


def test_the_smallest_limit_of_the_cgroup_and_its_ancestors_applies(tmp_path: Path) -> None:
    files = {
        "kubepods/memory.max": f"{GIB}\n",
        "kubepods/pod1/memory.max": "max\n",
        "kubepods/pod1/c1/memory.max": f"{3 * GIB}\n",
    }
    assert limit(tmp_path, files, own="0::/kubepods/pod1/c1\n") == GIB


def test_a_container_that_cannot_see_its_path_reads_the_root(tmp_path: Path) -> None:
    # /proc/self/cgroup names the host's path; the container sees its own cgroup at the root
    files = {"memory.max": f"{GIB}\n"}
    assert limit(tmp_path, files, own="0::/system.slice/docker-abc.scope\n") == GIB


def test_files_that_hold_anything_else_are_ignored(tmp_path: Path) -> None:
    files = {"memory.max": "lots\n", "memory/memory.limit_in_bytes": b"\xff\xfe"}
    assert limit(tmp_path, files, own="4:memory:/\n0::/\n") == 24683436 * 1024


def test_nothing_readable_is_no_limit(tmp_path: Path) -> None:
    root, proc = cgroup(tmp_path, {})
    assert memory_limit(root, proc, tmp_path / "no-meminfo") is None


def test_resident_memory_of_this_process() -> None:
    now, peak = rss_bytes(), rss_bytes(field="VmHWM")
    assert 10 << 20 < now <= peak
    assert rss_bytes(os.getpid()) > 0
    assert rss_bytes(pid=2**22 + 1) == 0  # no such process
