"""How much memory this process's container may use, and how much this process holds.

The limit is read as the kernel enforces it: cgroup v2 `memory.max` ("max" is none), cgroup v1
`memory.limit_in_bytes` (a value near 2**63 is none), in this process's cgroup and each of its
ancestors (the smallest applies), and at the root of the mounted hierarchy, which is the
container's own cgroup (app.cgroup); never more than the machine's memory (/proc/meminfo). A
file that is missing, unreadable or holds anything else is ignored, as app.cpus does for the
CPU quota.
"""

from __future__ import annotations

import ctypes
from contextlib import suppress
from pathlib import Path

from app.cgroup import CGROUP_ROOT, PROC_CGROUP, cgroup_dirs, read

PROC_MEMINFO = Path("/proc/meminfo")
V1_MEMORY_MOUNT = "memory"
_V1_UNLIMITED = 1 << 62  # v1 writes "no limit" as the largest page-aligned value below 2**63


def memory_limit(
    root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP, meminfo: Path = PROC_MEMINFO
) -> int | None:
    """Bytes this process's cgroup may use, or the machine's memory if less; None if neither
    can be read."""
    dirs = cgroup_dirs(root, proc_cgroup, V1_MEMORY_MOUNT, [V1_MEMORY_MOUNT])
    limits = [n for d in dirs if (n := _dir_limit(d)) is not None]
    machine = _machine_bytes(meminfo)
    if machine is not None:
        limits.append(machine)
    return min(limits, default=None)


def give_back_memory() -> None:
    """Return freed heap memory to the system (glibc's malloc_trim); a no-op elsewhere."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_bytes(pid: int | str = "self", field: str = "VmRSS") -> int:
    """Resident memory of a process, now (`VmRSS`) or at its peak (`VmHWM`), from
    /proc/<pid>/status; 0 where it cannot be read."""
    for line in read(Path(f"/proc/{pid}/status")).splitlines():
        name, _, rest = line.partition(":")
        if name == field and rest.split()[:1] and rest.split()[0].isdigit():
            return int(rest.split()[0]) * 1024
    return 0


def _dir_limit(directory: Path) -> int | None:
    for name in ("memory.max", "memory.limit_in_bytes"):
        value = read(directory / name)
        if value.isdigit() and 0 < int(value) < _V1_UNLIMITED:
            return int(value)
    return None


def _machine_bytes(meminfo: Path) -> int | None:
    for line in read(meminfo).splitlines():
        name, _, rest = line.partition(":")
        if name == "MemTotal" and rest.split()[:1] and rest.split()[0].isdigit():
            return int(rest.split()[0]) * 1024
    return None
