"""The compose stack, up once for the session: two api replicas behind the load balancer.

Collected only by `make container-test` (CONTAINER_TEST=1): building images and starting
containers takes minutes, so `make test` leaves this directory out. Where no container can run
at all the tests skip with one line, except in CI, where they fail.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.container.stack import Stack, find_engine

if os.environ.get("CONTAINER_TEST") != "1":
    collect_ignore_glob = ["test_*.py"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    found = find_engine()
    if isinstance(found, str):
        if os.environ.get("CI") == "true":
            pytest.fail(f"no container can run in CI: {found}")
        pytest.skip(f"no container can run here: {found}")
    engine, compose = found
    stack = Stack(engine, compose, _free_port())
    stack.down()  # a run killed before its teardown leaves its containers
    try:
        stack.up()
        for name in stack.replicas():
            stack.wait_serving(name)
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="session")
def client(stack: Stack) -> Iterator[httpx.Client]:
    """Overrides tests/conftest.py's in-process client: requests go through the load balancer."""
    with httpx.Client(base_url=stack.url, timeout=30, trust_env=False) as c:
        yield c
