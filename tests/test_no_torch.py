"""The service runtime never imports torch or the training package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import sys
from fastapi.testclient import TestClient
from app.config import Settings
from app.main import create_app

with TestClient(create_app(Settings(model_dir=sys.argv[1]))) as client:
    assert client.post("/tag", json={"inputs": "Hello world."}).status_code == 200
    assert client.post("/embed", json={"inputs": "Hello world."}).status_code == 200
loaded = [m for m in sys.modules if m.split(".")[0] in ("torch", "training")]
assert not loaded, loaded
"""


@pytest.mark.slow  # a subprocess
def test_runtime_does_not_import_torch(model_dir: Path, repo_root: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(model_dir)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
