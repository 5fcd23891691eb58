"""Shared fixtures: the model directory, settings, apps and clients, and the real server."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.helpers import ROOT, Server, find_model_dir, start_server

# BIGRU_ variables that steer the tests, not the service
TEST_VARIABLES = ("BIGRU_TEST_MODEL_DIR", "BIGRU_UPDATE_SCREENSHOT")

# The service reads its settings from the environment; tests set theirs explicitly.
for _name in list(os.environ):
    if _name in ("HOST", "PORT") or (_name.startswith("BIGRU_") and _name not in TEST_VARIABLES):
        del os.environ[_name]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def model_dir() -> Path:
    path = find_model_dir()
    assert (path / "model.onnx").is_file(), f"no model at {path}"
    return path


@pytest.fixture(scope="session")
def shipped_model_dir() -> Path:
    """models/bigru-en only (card.json and all): for checks of what is shipped."""
    path = ROOT / "models" / "bigru-en"
    assert (path / "model.onnx").is_file(), f"no shipped model at {path}"
    return path


@pytest.fixture
def model_copy(model_dir: Path, tmp_path: Path) -> Path:
    """The test model's directory, model.onnx linked rather than copied."""
    copy = tmp_path / "bigru-test"
    copy.mkdir()
    for path in model_dir.iterdir():
        if path.name == "model.onnx":
            (copy / path.name).symlink_to(path.resolve())
        elif path.is_file():
            shutil.copyfile(path, copy / path.name)
    return copy


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def make_settings(model_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return Settings(model_dir=model_dir, **overrides)

    return make


@pytest.fixture(scope="module")
def client(model_dir: Path) -> Iterator[TestClient]:
    """The real app and model with default settings, lifespan run once per module."""
    with TestClient(create_app(Settings(model_dir=model_dir))) as c:
        yield c


@asynccontextmanager
async def _serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


@pytest.fixture
def serve() -> Callable[[FastAPI], Any]:
    """`async with serve(app) as client`: an async client on a started app."""
    return _serve


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`python -m app` over TCP for the module's tests, with the module's `SERVER_ENV` settings
    if it has any. It must stop on SIGTERM with status 0, having logged no error."""
    env: dict[str, str] = getattr(request.module, "SERVER_ENV", {})
    running = start_server(model_dir, tmp_path_factory.mktemp("server") / "server.log", **env)
    try:
        yield running
    finally:
        status = running.stop()
    assert status == 0, running.log.read_text()[-3000:]
    assert not [r for r in running.records() if r["level"] == "ERROR"], running.log.read_text()
