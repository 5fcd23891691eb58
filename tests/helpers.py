"""What several test modules use: the model to test with, error bodies, a fake model spec, a
random NER CRF, and the real server (`python -m app` over TCP) in a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from app.model.crf import CRFDecoder
from app.model.spec import HeadSpec, ModelSpec

ROOT = Path(__file__).resolve().parent.parent


NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


def ner_crf(seed: int) -> CRFDecoder:
    """A CRF over NER_LABELS with random transitions, start and end scores."""
    rng = np.random.default_rng(seed)
    n = len(NER_LABELS)
    return CRFDecoder.build(
        NER_LABELS, rng.normal(0, 2, (n, n)), rng.normal(0, 1, n), rng.normal(0, 1, n)
    )


def find_model_dir() -> Path:
    """BIGRU_TEST_MODEL_DIR, else the shipped models/bigru-en."""
    return Path(os.environ.get("BIGRU_TEST_MODEL_DIR") or ROOT / "models" / "bigru-en")


def error_of(response: httpx.Response) -> tuple[str, str]:
    """(message, error_type) of an error response, in the shape its route writes: OpenAI's
    `{"error": {"message", "type", "param", "code"}}` under /v1/, `{"error", "error_type"}`
    elsewhere."""
    body = response.json()
    assert response.headers["content-type"] == "application/json"
    if response.url.path.startswith("/v1/"):
        assert body.keys() == {"error"}, body
        error = body["error"]
        assert error.keys() == {"message", "type", "param", "code"}, body
        status = response.status_code
        kind = "server_error" if status >= 500 else "invalid_request_error"
        kind = {401: "authentication_error", 429: "rate_limit_error"}.get(status, kind)
        assert error["type"] == kind and error["param"] is None, body
        message, error_type = error["message"], error["code"]
    else:
        assert body.keys() == {"error", "error_type"}, body
        message, error_type = body["error"], body["error_type"]
    assert isinstance(message, str) and message, body
    return message, error_type


def fake_spec(heads: tuple[str, ...] = ("upos", "ner"), embedding_dim: int | None = 1) -> ModelSpec:
    """The spec of a fake backend: softmax heads over three labels, a sentence encoder unless
    `embedding_dim` is None."""
    labels = ["A", "B", "C"]
    return ModelSpec(
        name="fake",
        version="0",
        sha256="",
        heads=[HeadSpec(name, labels, "softmax", None) for name in heads],
        embedding_dim=embedding_dim,
        vocab=["[PAD]", "[UNK]"],
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(**env: str) -> dict[str, str]:
    return {**os.environ, "HOST": "127.0.0.1", "BIGRU_LOG_JSON": "true", **env}


@dataclass(frozen=True)
class Server:
    """`python -m app` in a subprocess; its stderr (JSON lines) goes to `log`, a file: a pipe
    nobody reads would fill and stall the server."""

    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then its exit status (killed if it has not exited within `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def start_server(model_dir: Path, log: Path, **env: str) -> Server:
    """The service on a free port with `env` added to the settings, once /health answers."""
    port = free_port()
    settings = server_env(PORT=str(port), BIGRU_MODEL_DIR=str(model_dir), **env)
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=settings, stderr=sink)
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_healthy(proc, server.base, log)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return server


def wait_healthy(proc: subprocess.Popen[Any], base: str, log: Path) -> None:
    """Poll /health until 200; a server that dies first fails with its log."""
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(log.read_text())
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not become healthy"
        time.sleep(0.2)


_SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def metric(base: str, name: str) -> float:
    """The sum of a metric's samples whose labels include those `name` gives:
    `bigru_queue_size`, `bigru_requests_total{route="/tag",status="200"}` (any model)."""
    wanted = _SAMPLE.match(f"{name} 0")
    assert wanted is not None, name
    labels = set(_LABEL.findall(wanted.group(2) or ""))
    text = httpx.get(f"{base}/metrics", timeout=5).text
    found = (_SAMPLE.match(line) for line in text.splitlines())
    return sum(
        float(m.group(3))
        for m in found
        if m and m.group(1) == wanted.group(1) and labels <= set(_LABEL.findall(m.group(2) or ""))
    )


def cgroup(tmp_path: Path, files: dict[str, str | bytes], own: str = "0::/\n") -> tuple[Path, Path]:
    """A fake /sys/fs/cgroup holding `files` (paths relative to it) and a fake
    /proc/self/cgroup holding `own`: (root, proc_cgroup)."""
    root = tmp_path / "cgroup"
    root.mkdir()
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(own)
    return root, proc
