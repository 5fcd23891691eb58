"""Where this process's cgroup settings are: its cgroup directories under the v2 hierarchy and
a v1 controller's, read by app.cpus (the CPU quota) and app.memory (the memory limit).

Each directory that may bind this process is listed: its own cgroup of /proc/self/cgroup, that
cgroup's ancestors, and the mount's root, which is the container's own cgroup when
/proc/self/cgroup names a path the container cannot see.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def cgroup_dirs(
    root: Path, proc_cgroup: Path, controller: str, v1_mounts: Sequence[str]
) -> Iterator[Path]:
    """Each directory whose settings may bind this process: under the v2 root and each v1
    mount of `controller`, the process's cgroup, its ancestors, and the mount's root."""
    v2_path, v1_path = own_paths(proc_cgroup, controller)
    bases = [(root, v2_path)] + [(root / m, v1_path) for m in v1_mounts]
    for base, own in bases:
        path = PurePosixPath(own)
        for ancestor in (path, *path.parents):
            yield base / str(ancestor).lstrip("/")


def own_paths(proc_cgroup: Path, controller: str) -> tuple[str, str]:
    """(v2 path, v1 `controller` path) of this process's cgroup; "/" where not listed.
    Lines read `hierarchy-id:controllers:path`; v2's has no controllers."""
    v2, v1 = "/", "/"
    for line in read(proc_cgroup).splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        if parts[1] == "":
            v2 = parts[2]
        elif controller in parts[1].split(","):
            v1 = parts[2]
    return v2, v1


def read(path: Path) -> str:
    """The file's text, stripped; "" if it is missing or unreadable."""
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return ""
