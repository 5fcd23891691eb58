"""How many CPUs this process may use: its cgroup's CPU quota and its affinity mask, never the
host's core count (a container limited to 2 CPUs on a 64-core node sees all 64 in os.cpu_count).

The quota is read as the kernel enforces it: cgroup v2 `cpu.max` ("200000 100000" is 2 CPUs,
"max 100000" none), cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` (a quota of -1 is none),
in this process's cgroup and each of its ancestors (the smallest applies), and at the root of the
mounted hierarchy, which is the container's own cgroup when /proc/self/cgroup names a path the
container cannot see. A file that is missing or unreadable or holds anything else is ignored.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from app.cgroup import CGROUP_ROOT, PROC_CGROUP, cgroup_dirs, read

# Where a cgroup v1 `cpu` controller is mounted under CGROUP_ROOT, by distribution habit.
V1_CPU_MOUNTS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def usable_cpus(
    root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP, affinity: int | None = None
) -> int:
    """The CPUs this process may use: the smaller of its affinity mask and its cgroup quota,
    a fractional quota rounded up (1.5 CPUs is 2: two processes can use the 1.5 between them,
    one could use 1 at most), and at least 1."""
    counts = [_affinity() if affinity is None else affinity]
    quota = cgroup_quota(root, proc_cgroup)
    if quota is not None:
        counts.append(math.ceil(quota))
    return max(1, min(counts))


def cgroup_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """CPUs the cgroup quota allows (quota / period), the smallest that applies; None if none."""
    dirs = cgroup_dirs(root, proc_cgroup, "cpu", V1_CPU_MOUNTS)
    quotas = [q for d in dirs if (q := _dir_quota(d)) is not None]
    return min(quotas, default=None)


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux: no affinity mask and no cgroups
        return os.cpu_count() or 1


def _dir_quota(directory: Path) -> float | None:
    """The quota in one cgroup directory, v2's `cpu.max` or v1's pair of files; None if none."""
    v2 = read(directory / "cpu.max").split()
    if len(v2) == 2:
        return _ratio(v2[0], v2[1])
    return _ratio(read(directory / "cpu.cfs_quota_us"), read(directory / "cpu.cfs_period_us"))


def _ratio(quota: str, period: str) -> float | None:
    """quota / period in CPUs; None for no quota ("max", -1) or anything not two positive
    integers."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None
