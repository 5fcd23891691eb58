"""app.cgroup: this process's cgroup paths from /proc/self/cgroup, the directories whose settings
may bind it (its cgroup, the ancestors, the mount's root, under v2 and each v1 mount), and
`read`, which never raises."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cgroup import cgroup_dirs, own_paths, read


def proc_cgroup(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proc-self-cgroup"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "controller", "expected"),
    [
        ("0::/kubepods/pod1/c1\n", "cpu", ("/kubepods/pod1/c1", "/")),  # v2 only
        ("4:memory:/docker/abc\n0::/\n", "memory", ("/", "/docker/abc")),
        ("4:memory:/docker/abc\n2:cpu,cpuacct:/docker/x\n", "cpu", ("/", "/docker/x")),
        ("2:cpu,cpuacct:/docker/x\n", "cpuacct", ("/", "/docker/x")),  # any of the list
        ("3:cpuset:/other\n", "cpu", ("/", "/")),  # a controller's name, not a prefix of one
        ("1:name=systemd:/user.slice\n", "cpu", ("/", "/")),
        ("garbage\n0:\n0::relative/path\n", "cpu", ("/", "/")),  # malformed lines are skipped
        ("", "cpu", ("/", "/")),
    ],
)
def test_own_paths(tmp_path: Path, text: str, controller: str, expected: tuple[str, str]) -> None:
    assert own_paths(proc_cgroup(tmp_path, text), controller) == expected


def test_a_path_may_hold_colons(tmp_path: Path) -> None:
    assert own_paths(proc_cgroup(tmp_path, "0::/a:b\n"), "cpu") == ("/a:b", "/")


def test_no_proc_file_is_the_roots(tmp_path: Path) -> None:
    assert own_paths(tmp_path / "absent", "cpu") == ("/", "/")
    root = tmp_path / "cgroup"
    assert list(cgroup_dirs(root, tmp_path / "absent", "cpu", ["cpu"])) == [root, root / "cpu"]


def test_the_own_cgroup_then_its_ancestors_then_the_mount_root(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    own = proc_cgroup(tmp_path, "0::/kubepods/pod1/c1\n")
    assert list(cgroup_dirs(root, own, "cpu", [])) == [
        root / "kubepods/pod1/c1",
        root / "kubepods/pod1",
        root / "kubepods",
        root,  # the container's own cgroup when the path above is the host's
    ]


def test_each_v1_mount_of_the_controller_after_v2(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    own = proc_cgroup(tmp_path, "5:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n")
    dirs = list(cgroup_dirs(root, own, "cpu", ["cpu", "cpu,cpuacct"]))
    assert dirs == [
        root,
        root / "cpu/docker/abc",
        root / "cpu/docker",
        root / "cpu",
        root / "cpu,cpuacct/docker/abc",
        root / "cpu,cpuacct/docker",
        root / "cpu,cpuacct",
    ]


def test_read_strips_and_gives_nothing_for_what_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("  200000 100000\n")
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    assert read(tmp_path / "cpu.max") == "200000 100000"
    assert read(tmp_path / "absent") == ""
    assert read(tmp_path) == ""  # a directory
    assert read(tmp_path / "binary") == ""  # not UTF-8
