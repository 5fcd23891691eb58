"""The compose stack of docker-compose.yml, run for real: its commands, replicas and load.

CONTAINER_ENGINE picks the engine: docker, with `docker compose` (Compose v2) where it is
installed, else `docker-compose` (v1); or podman, with podman-compose. No registry can be
reached here: tests/container/base_images.sh makes the base images. The test talks to the
stack only through the load balancer's port on 127.0.0.1 and through the engine's CLI
(`exec`, `kill`, `stop`, `inspect`), never to a container's own address.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import httpx

ROOT = Path(__file__).resolve().parent.parent.parent
PROJECT = "bigru-container-test"
IMAGE = "bigru-serve:latest"  # docker-compose.yml's api image
REPLICAS = 2
DRAIN_SECONDS = 20  # compose's stop_grace_period for api: SIGTERM, drain, then SIGKILL
# Where the host trusts a TLS-inspecting proxy, pip inside a build needs the host's CA bundle.
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_BUILD = ROOT / "tests" / "container" / "compose.host-build.yml"
TAG_BODY = {"inputs": "Barack Obama visited Berlin and met Angela Merkel."}
_CGROUPS: dict[str, Path] = {}  # container id -> its memory cgroup on the host
_TAG_200 = re.compile(
    r'^bigru_requests_total\{model="[^"]*",route="/tag",status="200"\} (\S+)$', re.M
)


def run(argv: list[str], timeout: float = 60, env: dict[str, str] | None = None) -> str:
    """stdout of `argv`; on failure, an error carrying the end of what it printed."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{tail}")
    return done.stdout


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (the load balancer's, on the host)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll `check` until it holds, failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {seconds:.0f} s: {what}")
        time.sleep(0.2)


def _answers(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _docker() -> tuple[str, list[str]] | str:
    if not shutil.which("docker"):
        return "docker is not installed (make container-test installs docker.io as root with apt)"
    if not _answers(["docker", "info"]):
        return "no Docker daemon answers (tests/container/engine.sh starts one as root)"
    # Compose v2 (the CLI plugin) where it is installed, else v1's docker-compose.
    if _answers(["docker", "compose", "version"]):
        compose = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        compose = ["docker-compose"]
    else:
        return "neither `docker compose` nor docker-compose is installed"
    return "docker", [*compose, "-f", "docker-compose.yml", "-f", str(HOST_BUILD)]


def _podman() -> tuple[str, list[str]] | str:
    podman = shutil.which("podman")
    if not podman:
        return "podman is not installed (make container-test installs it as root with apt)"
    info = subprocess.run([podman, "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return f"podman cannot run: {(info.stderr.strip().splitlines() or ['?'])[-1]}"
    venv_bin = str(Path(sys.executable).parent)
    compose = shutil.which("podman-compose", path=venv_bin + os.pathsep + os.environ["PATH"])
    if not compose:
        return "podman-compose is not installed (make container-test installs it)"
    # Docker's image format: podman's default (OCI) has no HEALTHCHECK and drops it.
    build_args = "--format=docker"
    if HOST_CA.exists():
        build_args += f" --volume={HOST_CA}:{HOST_CA}:ro"
    return "podman", [compose, f"--podman-build-args={build_args}"]


def find_engine() -> tuple[str, list[str]] | str:
    """(engine CLI, compose argv) for CONTAINER_ENGINE (docker|podman), or why it cannot run."""
    engine = os.environ.get("CONTAINER_ENGINE", "docker")
    if engine == "docker":
        return _docker()
    if engine == "podman":
        return _podman()
    return f"CONTAINER_ENGINE must be docker or podman, not {engine!r}"


def versions(engine: str, compose: list[str]) -> str:
    """One line naming the engine's and compose's versions, for the test log."""
    if engine == "docker":
        server = run(["docker", "version", "--format", "{{.Server.Version}}"]).strip()
        client = run(["docker", "version", "--format", "{{.Client.Version}}"]).strip()
        engine_version = f"Docker Engine {server} (CLI {client})"
    else:
        engine_version = run(["podman", "--version"]).strip()
    program = compose[:2] if compose[0] == "docker" else compose[:1]  # without its options
    compose_version = run([*program, "version"]).strip().splitlines()[0]
    return f"{engine_version}; {compose_version}"


def _no_cgroup(name: str, container: str, root: Path) -> NoReturn:
    raise AssertionError(f"no memory cgroup named after {name} ({container}) under {root}")


def _cpu_usage_file(memory_cgroup: Path) -> Path:
    """The CPU time file of the cgroup of `memory_cgroup`: v1's cpuacct hierarchy at the same
    path, or v2's own `cpu.stat`."""
    parts = memory_cgroup.parts
    if "memory" in parts:  # cgroup v1
        i = parts.index("memory")
        return Path(*parts[:i], "cpuacct", *parts[i + 1 :]) / "cpuacct.usage"
    return memory_cgroup / "cpu.stat"


def _cpu_seconds(usage: Path) -> float:
    text = usage.read_text()
    if usage.name == "cpuacct.usage":
        return int(text) / 1e9
    fields = dict(line.split() for line in text.splitlines())
    return int(fields["usage_usec"]) / 1e6


def reset_memory_peak(cgroup: Path) -> bool:
    """Start the cgroup's memory peak again from now, where the kernel lets us (cgroup v1: root
    may; v2: kernels from 6.12); whether it did."""
    for peak in (cgroup / "memory.max_usage_in_bytes", cgroup / "memory.peak"):
        if peak.exists():
            try:
                peak.write_text("0")
            except OSError:
                return False
            return True
    return False


def memory(cgroup: Path) -> dict[str, int]:
    """The cgroup's memory in bytes: its peak usage since the last reset (v1's counts page cache
    too), its limit (sys.maxsize: none), and its anonymous memory and page cache now."""
    stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
    if (cgroup / "memory.max_usage_in_bytes").exists():
        peak, limit = cgroup / "memory.max_usage_in_bytes", cgroup / "memory.limit_in_bytes"
        rss, cache = stat["total_rss"], stat["total_cache"]
    else:
        peak, limit = cgroup / "memory.peak", cgroup / "memory.max"
        rss, cache = stat["anon"], stat["file"]
    most = limit.read_text().strip()
    return {
        "peak": int(peak.read_text()),
        "limit": sys.maxsize if most == "max" else int(most),
        "rss": int(rss),
        "cache": int(cache),
    }


@dataclass
class Stack:
    engine: str
    compose: list[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "LB_PORT": f"127.0.0.1:{self.port}"}

    def _compose(self, *args: str, timeout: float = 120) -> str:
        return run([*self.compose, "-p", PROJECT, *args], timeout=timeout, env=self._env())

    def cli(self, *args: str, timeout: float = 60) -> str:
        return run([self.engine, *args], timeout=timeout)

    # --- the commands docs/deploy.md gives -------------------------------------------------

    def up(self) -> None:
        self._compose("up", "-d", "--build", "--scale", f"api={REPLICAS}", timeout=900)

    def down(self) -> None:
        """`compose down`, then whatever of the project it left: podman-compose's down knows
        nothing of --scale and leaves the replicas beyond the first."""
        argv = [*self.compose, "-p", PROJECT, "down", "-t", str(DRAIN_SECONDS)]
        timeout = DRAIN_SECONDS * 4
        subprocess.run(argv, capture_output=True, timeout=timeout, cwd=ROOT, env=self._env())
        label = f"label=com.docker.compose.project={PROJECT}"
        left = self.cli("ps", "-aq", "--filter", label).split()
        if left:
            self.cli("rm", "-f", *left)
        if self.engine == "podman":
            subprocess.run(["podman", "pod", "rm", "-f", f"pod_{PROJECT}"], capture_output=True)
        subprocess.run([self.engine, "network", "rm", f"{PROJECT}_default"], capture_output=True)

    # --- the replicas ----------------------------------------------------------------------

    def replicas(self) -> list[str]:
        """The api containers' names, running or not, in replica order."""
        out = self.cli(
            "ps", "-a", "--format", "{{.Names}}",
            "--filter", f"label=com.docker.compose.project={PROJECT}",
            "--filter", "label=com.docker.compose.service=api",
        )  # fmt: skip
        return sorted(out.split())

    def log(self, name: str) -> str:
        """Everything the container has written, stdout and stderr, since it was created."""
        done = subprocess.run(
            [self.engine, "logs", name], capture_output=True, text=True, timeout=120
        )
        return done.stdout + done.stderr

    def lb_log(self, lines: int = 60) -> str:
        """The load balancer's log other than plain 200s: its errors, retries and reloads."""
        done = subprocess.run([self.engine, "logs", self.lb()], capture_output=True, text=True)
        log = (done.stdout + done.stderr).splitlines()
        return "\n".join([line for line in log if " 200 " not in line][-lines:])

    def lb(self) -> str:
        """The load balancer's container id."""
        (lb,) = self.cli(
            "ps", "-aq",
            "--filter", f"label=com.docker.compose.project={PROJECT}",
            "--filter", "label=com.docker.compose.service=lb",
        ).split()  # fmt: skip
        return lb

    def lb_resolves(self) -> set[str]:
        """The addresses the load balancer's resolver gives for `api`, as `upstreams` asks."""
        done = subprocess.run(
            [self.engine, "exec", self.lb(), "getent", "ahostsv4", "api"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        return {line.split()[0] for line in done.stdout.splitlines() if line.strip()}

    def wait_resolved(self, seconds: float = 60) -> None:
        """Until the load balancer resolves `api` to every replica; failing, says why it matters."""
        try:
            wait_until(lambda: len(self.lb_resolves()) == REPLICAS, seconds, "lb resolving api")
        except TimeoutError:
            raise AssertionError(
                f"the load balancer resolves `api` to {sorted(self.lb_resolves()) or 'nothing'}, "
                f"not to {REPLICAS} replicas: the containers cannot resolve each other by name. "
                "On podman that is the CNI network backend, which has no DNS between containers "
                '(network_backend = "netavark" in /etc/containers/containers.conf.d, then '
                "`podman system reset`); on Docker, the embedded DNS (127.0.0.11) of a "
                "user-defined network is not answering.\n" + self.lb_log()
            ) from None

    def inspect(self, name: str, template: str) -> str:
        return self.cli("inspect", "--format", template, name).strip()

    def memory_cgroup(self, name: str) -> Path:
        """The container's memory cgroup on the host, found by its full id: under cgroup v1's
        memory controller (docker: docker/<id>; podman: libpod_parent/libpod-<id>), else in
        the v2 tree. An AssertionError says when there is none."""
        container = self.inspect(name, "{{.Id}}")
        if container not in _CGROUPS:
            v1 = Path("/sys/fs/cgroup/memory")
            root = v1 if v1.is_dir() else Path("/sys/fs/cgroup")
            found = (
                Path(top) / child
                for top, children, _ in os.walk(root)
                for child in children
                if container in child and "conmon" not in child
            )
            _CGROUPS[container] = next(found, None) or _no_cgroup(name, container, root)
        return _CGROUPS[container]

    def cpu_percent(self, name: str, seconds: float = 1.0) -> float:
        """The container's CPU use over the next `seconds`, in percent of one core, from its
        cgroup's CPU time (`stats` averages over the container's life under podman)."""
        usage = _cpu_usage_file(self.memory_cgroup(name))
        before, start = _cpu_seconds(usage), time.monotonic()
        time.sleep(seconds)  # the sampling interval is the measurement, not a wait for an event
        return 100 * (_cpu_seconds(usage) - before) / (time.monotonic() - start)

    def ended(self, name: str) -> str:
        """How a stopped container ended, for a failure message: its exit code, whether the
        OOM killer ended it, when it started and finished, and its last log lines."""
        state = self.inspect(
            name, "exit {{.State.ExitCode}} oom={{.State.OOMKilled}} "
            "started {{.State.StartedAt}} finished {{.State.FinishedAt}} {{.State.Error}}",
        )  # fmt: skip
        done = subprocess.run(
            [self.engine, "logs", "--tail", "15", name], capture_output=True, text=True
        )
        return f"{name}: {state}\n{done.stdout}{done.stderr}"

    def running(self, name: str) -> bool:
        return self.inspect(name, "{{.State.Running}}") == "true"

    def healthy(self, name: str) -> bool:
        """The image's HEALTHCHECK verdict. Podman without systemd schedules no checks, so
        there the check is run on demand; Docker's own schedule is read."""
        if self.engine == "podman":
            check = subprocess.run(["podman", "healthcheck", "run", name], capture_output=True)
            return check.returncode == 0
        return self.inspect(name, "{{.State.Health.Status}}") == "healthy"

    def in_container(self, name: str, code: str) -> str:
        """Run Python inside the replica (its loopback, not the host's network)."""
        return self.cli("exec", name, "python", "-c", code)

    def tag_count(self, name: str) -> int:
        """Successful /tag requests the replica has served, from its own /metrics."""
        text = self.in_container(
            name,
            "import urllib.request as u;"
            "print(u.urlopen('http://127.0.0.1:8000/metrics', timeout=5).read().decode())",
        )
        return sum(int(float(count)) for count in _TAG_200.findall(text))  # over its models

    def wait_serving(self, name: str, seconds: float = 90) -> None:
        """Until the replica is running, healthy and handed requests by the load balancer."""
        wait_until(lambda: self.running(name) and self.healthy(name), seconds, f"{name} healthy")
        before = self.tag_count(name)
        with httpx.Client(base_url=self.url, timeout=30, trust_env=False) as client:

            def served() -> bool:
                # leastconn spreads idle requests round-robin. Until its first health check
                # passes, the load balancer has no replica to send them to (503).
                for _ in range(REPLICAS * 2):
                    client.post("/tag", json=TAG_BODY)
                return self.tag_count(name) > before

            wait_until(served, seconds, f"the load balancer sending {name} requests")


class Load:
    """Clients posting /tag through the load balancer on threads, each request's outcome kept.

    Bounded in count and time: it stops after `limit` requests or `seconds`, whichever first.
    """

    def __init__(self, url: str, clients: int = 4, limit: int = 20_000, seconds: float = 180):
        self.url, self.limit = url, limit
        self.deadline = time.monotonic() + seconds
        self.outcomes: list[int | str] = []  # status codes, or the exception's name
        self.latencies: list[float] = []  # seconds each 200 took, sent to answered
        self._sent = 0
        self._done = threading.Condition()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(clients)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _claim(self) -> bool:
        """Whether this thread may send one more request."""
        with self._done:
            if self._stop.is_set() or time.monotonic() > self.deadline or self._sent >= self.limit:
                return False
            self._sent += 1
            return True

    def _client(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30, trust_env=False) as client:
            while self._claim():
                start = time.perf_counter()
                try:
                    outcome: int | str = client.post("/tag", json=TAG_BODY).status_code
                except httpx.HTTPError as error:
                    outcome = type(error).__name__
                took = time.perf_counter() - start
                with self._done:
                    self.outcomes.append(outcome)
                    if outcome == 200:
                        self.latencies.append(took)
                    self._done.notify_all()

    def wait_for(self, more: int, seconds: float = 60) -> None:
        """Until `more` requests beyond those done now have been answered."""
        with self._done:
            target = len(self.outcomes) + more
            if not self._done.wait_for(lambda: len(self.outcomes) >= target, seconds):
                raise TimeoutError(f"{more} requests not answered within {seconds:.0f} s")

    def finish(self, seconds: float = 120) -> None:
        """Until all `limit` requests have been answered."""
        with self._done:
            if not self._done.wait_for(lambda: len(self.outcomes) >= self.limit, seconds):
                raise TimeoutError(f"{self.limit} requests not answered within {seconds:.0f} s")

    def failures(self) -> list[int | str]:
        return [o for o in self.outcomes if o != 200]
