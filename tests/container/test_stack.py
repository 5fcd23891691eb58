"""The running stack: both replicas serve, the containers are locked down, and replicas can die
or be restarted under load without a client seeing an error."""

from __future__ import annotations

import json

import httpx

from tests.container.stack import (
    DRAIN_SECONDS,
    IMAGE,
    PROJECT,
    REPLICAS,
    ROOT,
    Load,
    Stack,
    free_port,
    wait_until,
)


def test_both_replicas_serve_traffic(stack: Stack) -> None:
    replicas = stack.replicas()
    assert len(replicas) == REPLICAS
    before = {name: stack.tag_count(name) for name in replicas}
    with Load(stack.url, clients=4, limit=60) as load:
        load.wait_for(60)
    assert load.failures() == []
    served = {name: stack.tag_count(name) - before[name] for name in replicas}
    assert sum(served.values()) == 60
    assert min(served.values()) >= 10, served  # least-connections spreads them


def test_health_is_the_container_healthcheck(stack: Stack) -> None:
    healthcheck = stack.cli("image", "inspect", "--format", "{{json .Config.Healthcheck}}", IMAGE)
    image = json.loads(healthcheck)
    assert "/health" in " ".join(image["Test"])
    for name in stack.replicas():
        test = json.loads(stack.inspect(name, "{{json .Config.Healthcheck.Test}}"))
        assert test[0] == "CMD" and "/health" in " ".join(test)
        assert stack.healthy(name)


def test_the_image_alone_turns_healthy_and_exits_0_on_sigterm(stack: Stack) -> None:
    """As `docker run bigru-serve` runs it, with no compose file: its own HEALTHCHECK passes."""
    name = f"{PROJECT}-alone"
    stack.cli("run", "-d", "--name", name, IMAGE)
    try:
        wait_until(lambda: stack.healthy(name), 60, f"{name} healthy")
        stack.cli("stop", "-t", str(DRAIN_SECONDS), name, timeout=DRAIN_SECONDS * 3)
        assert stack.inspect(name, "{{.State.ExitCode}}") == "0", stack.ended(name)
    finally:
        stack.cli("rm", "-f", name)


def test_the_image_serves_a_folder_of_models(stack: Stack) -> None:
    """BIGRU_MODELS_DIR, as compose's MODELS_DIR sets it: every folder under the mount is a model,
    chosen per request, within the replica's memory limit."""
    name, port = f"{PROJECT}-models", free_port()
    shipped = ROOT / "models" / "bigru-en"
    mounts = [f"{shipped}:/models/{model}:ro" for model in ("bigru-en", "second")]
    stack.cli(
        "run", "-d", "--name", name, "--memory", "1536m", "-p", f"127.0.0.1:{port}:8000",
        *(arg for mount in mounts for arg in ("-v", mount)), "-e", "BIGRU_MODELS_DIR=/models",
        IMAGE,
    )  # fmt: skip
    try:
        wait_until(lambda: stack.healthy(name), 90, f"{name} healthy")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False) as c:
            assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["bigru-en", "second"]
            body = {"inputs": "Alice moved to Paris.", "heads": ["ner"]}
            answers = [c.post("/tag", json={**body, "model": m}) for m in ("second", None)]
            assert [r.status_code for r in answers] == [200, 200]
            assert answers[0].json() == answers[1].json()
            unknown = c.post("/tag", json={**body, "model": "third"})
            assert unknown.status_code == 404 and "'second'" in unknown.json()["error"]
    finally:
        stack.cli("rm", "-f", name)


def test_replicas_run_as_non_root(stack: Stack) -> None:
    for name in stack.replicas():
        assert stack.inspect(name, "{{.Config.User}}") == "10001:10001"
        # The server process itself (PID 1), not just what `exec` starts.
        status = stack.in_container(name, "print(open('/proc/1/status').read())")
        uids = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert set(uids.split()[1:]) == {"10001"}


def test_root_filesystem_is_read_only(stack: Stack) -> None:
    for name in stack.replicas():
        assert stack.inspect(name, "{{.HostConfig.ReadonlyRootfs}}") == "true"
        probe = (
            "import errno, pathlib\n"
            "for path in ('/app/x', '/opt/venv/x', '/x'):\n"
            "    try:\n"
            "        pathlib.Path(path).write_text('x')\n"
            "    except OSError as e:\n"
            "        assert e.errno in (errno.EROFS, errno.EACCES), (path, e)\n"
            "    else:\n"
            "        raise SystemExit(path + ' is writable')\n"
            "pathlib.Path('/tmp/x').write_text('x')  # the tmpfs\n"
        )
        stack.in_container(name, probe)


def test_killing_a_replica_under_load_shows_no_5xx(stack: Stack) -> None:
    victim, survivor = stack.replicas()
    try:
        with Load(stack.url, clients=4) as load:
            load.wait_for(40)
            stack.cli("kill", "--signal", "KILL", victim)
            load.wait_for(200)
        failed = load.failures()
        assert failed == [], f"{len(failed)} of {len(load.outcomes)} failed:\n{stack.lb_log()}"
        assert stack.running(survivor)
    finally:
        # Back to two replicas for what follows, also when this failed: a victim left dead
        # would fail the rolling restart next (its `stop` reads the kill's exit 137). Docker
        # does not restart a container `kill` stopped; podman's policy may have.
        if not stack.running(victim):
            stack.cli("start", victim)
        stack.wait_serving(victim)


def test_rolling_restart_drains_without_a_failed_request(stack: Stack) -> None:
    with Load(stack.url, clients=4) as load:
        load.wait_for(40)
        for name in stack.replicas():
            stack.cli("stop", "-t", str(DRAIN_SECONDS), name, timeout=DRAIN_SECONDS * 3)
            # drained, not killed (137: SIGKILL at the end of the grace period, or the OOM killer)
            assert stack.inspect(name, "{{.State.ExitCode}}") == "0", stack.ended(name)
            load.wait_for(40)  # the other replica carries the load alone
            stack.cli("start", name)
            stack.wait_serving(name)
        load.wait_for(40)
    failed = load.failures()
    assert failed == [], f"{len(failed)} of {len(load.outcomes)} failed:\n{stack.lb_log()}"


def test_request_id_passes_through_the_load_balancer(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url, timeout=30, trust_env=False) as client:
        sent = client.get("/health", headers={"X-Request-ID": "abc-123"})
        made = client.get("/health")
    assert sent.headers["x-request-id"] == "abc-123"
    assert made.headers["x-request-id"]  # the replica's own, passed back
