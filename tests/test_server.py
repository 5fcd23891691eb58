"""The real server: `python -m app` under uvicorn over TCP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(**env: str) -> dict[str, str]:
    return {**os.environ, "HOST": "127.0.0.1", "BIGRU_LOG_JSON": "true", **env}


def test_serves_health_then_tag(model_dir: Path, repo_root: Path) -> None:
    port = free_port()
    env = server_env(PORT=str(port), BIGRU_MODEL_DIR=str(model_dir))
    proc = subprocess.Popen(
        [sys.executable, "-m", "app"], cwd=repo_root, env=env, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become healthy"
            time.sleep(0.2)
        r = httpx.post(f"{base}/tag", json={"inputs": "Alice lives in Paris."}, timeout=10)
        assert r.status_code == 200
        assert [t["text"] for t in r.json()[0]["tokens"]] == ["Alice", "lives", "in", "Paris", "."]
        assert r.headers["x-request-id"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    # uvicorn re-raises the signal it caught once shut down, so SIGTERM is the exit status
    assert proc.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete." in stderr
    assert '"request_id"' in stderr  # JSON log lines


def test_bad_model_dir_exits_with_one_line(tmp_path: Path, repo_root: Path) -> None:
    env = server_env(PORT=str(free_port()), BIGRU_MODEL_DIR=str(tmp_path / "missing"))
    done = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.onnx not found" in lines[0], done.stderr
