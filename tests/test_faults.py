"""Faults: a bad model directory stops `python -m app` at start-up with one line, and an ONNX
Runtime error fails only the batch it happened in, logged with the request's id."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app import logs
from app.config import Settings
from app.main import create_app
from app.model.backend import OnnxBackend
from app.model.featurize import Features, pad_batch
from tests.fakes import Hooked
from tests.helpers import free_port, server_env


def _missing_onnx(model: Path) -> None:
    (model / "model.onnx").unlink()


def _corrupt_onnx(model: Path) -> None:
    (model / "model.onnx").unlink()
    (model / "model.onnx").write_bytes(b"\x08\x07not a model" * 100)


def _labels_off_the_graph(model: Path) -> None:
    spec = json.loads((model / "model.json").read_text())
    upos = spec["heads"][0]
    upos["labels"] = upos["labels"][:-1]  # the graph still has one column more
    (model / "model.json").write_text(json.dumps(spec))


@pytest.mark.slow
@pytest.mark.parametrize(
    "break_model, reason",
    [
        (lambda model: shutil.rmtree(model), "model.onnx not found"),
        (_missing_onnx, "model.onnx not found"),
        (_corrupt_onnx, "model.onnx: cannot load"),
        (_labels_off_the_graph, "model.onnx upos_logits has"),
    ],
    ids=["no-directory", "no-model-onnx", "corrupt-model-onnx", "labels-off-the-graph"],
)
def test_a_bad_model_exits_at_startup_with_one_line(
    break_model: Callable[[Path], None],
    reason: str,
    model_copy: Path,
    repo_root: Path,
) -> None:
    model = model_copy
    (model / "card.json").unlink(missing_ok=True)  # its sha256 would catch the corrupt file first
    break_model(model)
    env = server_env(PORT=str(free_port()), BIGRU_MODEL_DIR=str(model))
    done = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("bigru-serve: cannot load the model: ") and reason in lines[0]


class OneBadRun:
    """Once armed, the next run first feeds the real graph inputs ORT refuses, so ORT itself
    raises (an InvalidArgument on the input type) and the run fails as a broken one would."""

    def __init__(self, backend: OnnxBackend) -> None:
        self.backend = backend
        self.armed = False

    def arm(self) -> None:
        self.armed = True

    def __call__(self, task: str, batch: list[Features]) -> None:
        if self.armed:
            self.armed = False
            feeds = pad_batch(batch)
            feeds["input_ids"] = feeds["input_ids"].astype(np.float32)
            self.backend.run(feeds, ["upos_logits"])


@pytest.mark.anyio
@pytest.mark.slow  # seconds: kept out of make test-fast
async def test_an_ort_error_fails_only_its_batch_and_is_logged_with_the_request_id(
    model_dir: Path,
    serve: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = OnnxBackend(model_dir, ["cpu"], 1)
    bad_run = OneBadRun(real)
    app = create_app(Settings(model_dir=model_dir, max_batch_size=1), {"m": Hooked(real, bad_run)})
    texts = ["Alice lives in Paris.", "Bob works for Acme.", "It rained."]
    lines = io.StringIO()
    handler = logs.log_handler(json_lines=True, stream=lines)
    caplog.set_level(logging.INFO)
    logging.getLogger().addHandler(handler)
    try:
        async with serve(app) as client:
            alone = [(await client.post("/tag", json={"inputs": t})).json() for t in texts]
            bad_run.arm()
            responses = await asyncio.gather(
                *(
                    client.post("/tag", json={"inputs": t}, headers={"X-Request-ID": f"req-{i}"})
                    for i, t in enumerate(texts)
                )
            )
            after = await client.post("/tag", json={"inputs": texts[0]})
            health = await client.get("/health")
    finally:
        logging.getLogger().removeHandler(handler)

    failed = [r for r in responses if r.status_code == 500]
    assert len(failed) == 1, [r.status_code for r in responses]
    assert failed[0].json().keys() == {"error", "error_type"}
    assert failed[0].json()["error_type"] == "backend"
    for i, r in enumerate(responses):
        if r.status_code != 500:
            assert r.status_code == 200 and r.json() == alone[i]
    assert after.status_code == 200 and after.json() == alone[0]
    assert health.status_code == 200

    rid = failed[0].headers["x-request-id"]
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    errors = [r for r in records if r["level"] == "ERROR" and r["request_id"] == rid]
    assert any("inference failed" in r["message"] for r in errors), records
    requests = [r for r in records if r["logger"] == "app.http.edge" and r["request_id"] == rid]
    assert [r["message"].split()[:3] for r in requests] == [["POST", "/tag", "500"]]
