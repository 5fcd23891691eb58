"""The CPUs a process may use, from fake cgroup files (app.cpus) and through the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import config
from app.config import Settings
from app.cpus import cgroup_quota, usable_cpus
from tests.helpers import cgroup


def cpus(
    tmp_path: Path, files: dict[str, str | bytes], affinity: int = 64, own: str = "0::/\n"
) -> int:
    root, proc = cgroup(tmp_path, files, own)
    return usable_cpus(root, proc, affinity=affinity)


def test_v2_quota(tmp_path: Path) -> None:
    assert cpus(tmp_path, {"cpu.max": "200000 100000\n"}) == 2


def test_v2_without_a_quota_is_the_affinity_mask(tmp_path: Path) -> None:
    assert cpus(tmp_path, {"cpu.max": "max 100000\n"}, affinity=6) == 6


def test_v1_quota(tmp_path: Path) -> None:
    files = {"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}
    assert cpus(tmp_path, files) == 3


def test_v1_without_a_quota_is_the_affinity_mask(tmp_path: Path) -> None:
    files = {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}
    assert cpus(tmp_path, files, affinity=5) == 5


def test_no_cgroup_files_is_the_affinity_mask(tmp_path: Path) -> None:
    assert cpus(tmp_path, {}, affinity=3) == 3


def test_affinity_smaller_than_the_quota_wins(tmp_path: Path) -> None:
    assert cpus(tmp_path, {"cpu.max": "800000 100000"}, affinity=2) == 2


def test_a_fractional_quota_rounds_up(tmp_path: Path) -> None:
    """1.5 CPUs: 2 processes (between them they can use the 1.5; one could use 1)."""
    root, proc = cgroup(tmp_path, {"cpu.max": "150000 100000"})
    assert cgroup_quota(root, proc) == 1.5
    assert usable_cpus(root, proc, affinity=64) == 2


def test_a_quota_below_one_cpu_is_one(tmp_path: Path) -> None:
    assert cpus(tmp_path, {"cpu.max": "10000 100000"}) == 1
    assert usable_cpus(tmp_path, tmp_path / "absent", affinity=0) == 1


@pytest.mark.parametrize(
    "files",
    [
        {"cpu.max": "lots 100000"},
        {"cpu.max": "200000 0"},
        {"cpu.max": "200000"},
        {"cpu.max": ""},
        {"cpu.max": b"\xff\xfe 100000"},  # not UTF-8
        {"cpu/cpu.cfs_quota_us": "200000"},  # no period
        {"cpu/cpu.cfs_quota_us": "0", "cpu/cpu.cfs_period_us": "100000"},
        {"cpu/cpu.cfs_quota_us": "2e5", "cpu/cpu.cfs_period_us": "100000"},
    ],
)
def test_garbage_files_are_ignored(tmp_path: Path, files: dict[str, str | bytes]) -> None:
    assert cpus(tmp_path, files, affinity=4) == 4


def test_own_cgroup_and_its_ancestors_bind(tmp_path: Path) -> None:
    """Outside a cgroup namespace /proc/self/cgroup names the cgroup; a parent's smaller quota
    applies to its children."""
    files = {
        "kubepods/cpu.max": "300000 100000",
        "kubepods/pod1/cpu.max": "max 100000",
        "kubepods/pod1/c1/cpu.max": "400000 100000",
    }
    assert cpus(tmp_path, files, own="0::/kubepods/pod1/c1\n") == 3


def test_v1_cpu_controller_path_from_proc_self_cgroup(tmp_path: Path) -> None:
    files = {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
    }
    own = "5:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n"
    assert cpus(tmp_path, files, own=own) == 2


def test_a_path_the_container_cannot_see_falls_back_to_the_mount_root(tmp_path: Path) -> None:
    """Without a cgroup namespace a container reads the host's path for its cgroup, while its
    /sys/fs/cgroup is its own cgroup: the root's files hold its quota."""
    assert cpus(tmp_path, {"cpu.max": "200000 100000"}, own="0::/system.slice/x.scope\n") == 2


def test_unreadable_proc_self_cgroup_reads_the_roots(tmp_path: Path) -> None:
    root, _ = cgroup(tmp_path, {"cpu.max": "100000 100000"})
    assert usable_cpus(root, tmp_path / "absent", affinity=8) == 1


def test_this_machine_is_at_least_one() -> None:
    assert usable_cpus() >= 1


# Through the settings: BIGRU_PROCESSES=auto (the default) and the workers of each process.


@pytest.fixture
def four_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "usable_cpus", lambda: 4)


@pytest.mark.usefixtures("four_cpus")
def test_processes_default_to_the_usable_cpus_with_one_worker_each() -> None:
    s = Settings()
    assert (s.processes, s.workers) == (4, 1)


@pytest.mark.usefixtures("four_cpus")
@pytest.mark.parametrize(
    "env, expected",
    [
        ({"BIGRU_PROCESSES": "auto"}, (4, 1)),
        ({"BIGRU_PROCESSES": "AUTO"}, (4, 1)),
        ({"BIGRU_PROCESSES": "1"}, (1, 4)),
        ({"BIGRU_PROCESSES": "2"}, (2, 2)),
        ({"BIGRU_PROCESSES": "8"}, (8, 1)),
        ({"BIGRU_PROCESSES": "2", "BIGRU_WORKERS": "3"}, (2, 3)),
    ],
)
def test_processes_and_workers_from_env(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: tuple[int, int]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert (s.processes, s.workers) == expected


@pytest.mark.parametrize("value", ["0", "some", "-1", "1.5"])
def test_bad_processes(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("BIGRU_PROCESSES", value)
    with pytest.raises(ValueError):
        Settings()
