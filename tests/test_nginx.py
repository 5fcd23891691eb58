"""deploy/nginx: the load balancer's config and scripts, checked by nginx and run on this host.

`nginx -t` checks the config. Then nginx runs it in front of stand-in replicas on loopback,
changed only where the host must differ: its /tmp/nginx/ files go to a test directory, it listens
on 127.0.0.1, and the upstream list names local addresses. `upstreams write` runs as written.
`make container-test` runs the image in the compose stack.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from app.config import Settings
from tests.dockerfiles import dockerfile_stages, tool

pytestmark = pytest.mark.slow  # nginx and stand-in replicas, run on this host
ROOT = Path(__file__).resolve().parent.parent
LB = ROOT / "deploy" / "nginx"
CONFIG = LB / "nginx.conf"


@pytest.fixture(scope="module")
def nginx() -> str:
    found = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("nginx is not installed: make test installs it (the .venv/.system target)")
    pytest.skip("nginx is not installed (make test installs it where it runs as root with apt)")


def _directive(name: str) -> list[str]:
    """The arguments of each line of the config that starts with `name`, `;` dropped."""
    lines = (line.strip() for line in CONFIG.read_text().splitlines())
    return [line[len(name) :].strip(" ;") for line in lines if re.match(rf"{name}(\s|;)", line)]


def test_config_agrees_with_the_service_and_compose() -> None:
    assert _directive("least_conn") == [""]
    assert _directive("include") == ["/tmp/nginx/upstreams.conf"]
    retry = set(_directive("proxy_next_upstream")[0].split())
    assert {"error", "timeout", "http_503", "non_idempotent"} <= retry
    assert _directive("keepalive_timeout") == ["0"]  # no kept-alive connection for a reload to cut
    (body,) = _directive("client_max_body_size")
    assert int(body.removesuffix("m")) * 2**20 > Settings().max_body_bytes
    lb = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["lb"]
    assert [p.split(":")[-1] for p in lb["ports"]] == _directive("listen")
    assert lb["build"]["context"] == "deploy/nginx" and lb["tmpfs"] == ["/tmp"]
    image = dockerfile_stages(LB / "Dockerfile")[-1]
    (user,) = image.each("USER")
    assert int(user.split(":")[0]) > 0
    api_port = dockerfile_stages(ROOT / "Dockerfile")[-1].env()["PORT"]
    assert f"PORT=${{UPSTREAM_PORT:-{api_port}}}" in (LB / "upstreams").read_text()


def test_the_image_passes_hadolint() -> None:
    argv = [tool("hadolint"), "--no-color", str(LB / "Dockerfile")]
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _upstreams(tmp_path: Path, name: str) -> str:
    env = {**os.environ, "UPSTREAM_NAME": name, "UPSTREAM_FILE": str(tmp_path / "up.conf")}
    subprocess.run([LB / "upstreams", "write"], env=env, check=True, timeout=30)
    return (tmp_path / "up.conf").read_text()


def test_upstreams_lists_each_address_of_the_name(tmp_path: Path) -> None:
    localhost = _upstreams(tmp_path, "localhost")
    assert localhost == "server 127.0.0.1:8000 max_fails=1 fail_timeout=2s;\n"
    # No replica yet: the config stays valid and nginx answers 502.
    assert _upstreams(tmp_path, "no-such-host.invalid") == "server 127.0.0.1:8000 down;\n"


def harness_config(workdir: Path, servers: list[int], port: int) -> Path:
    """deploy/nginx/nginx.conf with its files under `workdir`, listening on 127.0.0.1."""
    text = CONFIG.read_text().replace("/tmp/nginx/", f"{workdir}/")
    for old, new in (
        ("listen 8080;", f"listen 127.0.0.1:{port};"),
        ("access_log /dev/stdout lb;", f"access_log {workdir}/access.log lb;"),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    lines = "".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n" for p in servers)
    (workdir / "upstreams.conf").write_text(lines)
    path = workdir / "nginx.conf"
    path.write_text(text)
    return path


def test_nginx_t_accepts_the_config(nginx: str, tmp_path: Path) -> None:
    conf = harness_config(tmp_path, [8000], 8080)
    argv = [nginx, "-t", "-e", "stderr", "-c", str(conf)]
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


class _Replica(BaseHTTPRequestHandler):
    """Stands in for an api replica: answers with its own port and what it was sent."""

    def do_GET(self) -> None:
        self._reply({"status": "ok"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self._reply({"bytes": len(body), "forwarded_for": self.headers["X-Forwarded-For"]})

    def _reply(self, payload: dict) -> None:
        data = json.dumps({**payload, "replica": self.server.server_address[1]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Request-Id", "from-replica")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class _Crashing(_Replica):
    """Reads the request, then resets the connection: a replica killed mid-request."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lb(nginx: str, tmp_path: Path) -> Iterator[tuple[httpx.Client, list[int], int]]:
    """nginx on the config before two live replicas, one that resets and one that is gone."""
    live = [_serve(_Replica) for _ in range(2)]
    crashing = _serve(_Crashing)
    gone = _free_port()  # nothing listens there: connections are refused, as by a stopped one
    servers = [r.server_address[1] for r in live] + [crashing.server_address[1], gone]
    port = _free_port()
    conf = harness_config(tmp_path, servers, port)
    proc = subprocess.Popen(
        [nginx, "-e", "stderr", "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 10
            while True:
                assert proc.poll() is None, "nginx exited"
                try:
                    client.get("/health")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "nginx did not start listening"
                    time.sleep(0.05)
            yield client, servers, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for server in [*live, crashing]:
            server.shutdown()
            server.server_close()


def test_nginx_retries_a_reset_or_refused_request_on_another_replica(
    lb: tuple[httpx.Client, list[int], int], tmp_path: Path
) -> None:
    client, (first, second, crashing, gone), _ = lb
    # Small enough for nginx's in-memory buffer: run as root, its workers (nobody) could not
    # write temp files under pytest's private tmp_path.
    answers = [client.post("/tag", content=b"x" * 4000) for _ in range(30)]
    assert [a.status_code for a in answers] == [200] * 30
    assert {a.json()["replica"] for a in answers} == {first, second}
    assert {a.json()["bytes"] for a in answers} == {4000}
    assert {a.json()["forwarded_for"] for a in answers} == {"127.0.0.1"}
    assert {a.headers["x-request-id"] for a in answers} == {"from-replica"}
    assert {a.headers["connection"] for a in answers} == {"close"}
    # $upstream_addr lists every replica a request was tried on: both failures were retried.
    log = (tmp_path / "access.log").read_text()
    assert f"127.0.0.1:{crashing}, " in log and f"127.0.0.1:{gone}, " in log, log


def test_nginx_sends_a_large_post_a_replica_received_to_no_other(
    lb: tuple[httpx.Client, list[int], int], tmp_path: Path
) -> None:
    """A POST of 10,000 bytes or more that a replica took and then failed is not tried on the
    next (were the body what killed it, the retry would kill that one too); one that never
    reached a replica, refused, still is."""
    client, (first, second, crashing, gone), _ = lb
    answers = [client.post("/tag", content=b"x" * 20_000) for _ in range(40)]
    log = [line for line in (tmp_path / "access.log").read_text().splitlines() if "POST" in line]
    crashed = [line for line in log if f"upstream=127.0.0.1:{crashing} " in line]
    assert crashed and all(" 502 " in line for line in crashed), log  # tried there alone
    refused_then_served = [line for line in log if f"127.0.0.1:{gone}, " in line]
    assert refused_then_served and all(" 200 " in line for line in refused_then_served), log
    statuses = {a.status_code for a in answers}
    assert statuses == {200, 502}, statuses
    served = {a.json()["replica"] for a in answers if a.status_code == 200}
    assert served == {first, second}
