"""The compose stack, up once for the session: two api replicas behind the load balancer.

Collected only by `make container-test` (CONTAINER_TEST=1): building images and starting
containers takes minutes, so `make test` leaves this directory out. Where no container can run
at all the tests skip with one line, except in CI, where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.container.stack import Stack, find_engine, free_port, versions

if os.environ.get("CONTAINER_TEST") != "1":
    collect_ignore_glob = ["test_*.py"]


def pytest_report_header() -> str | None:
    if os.environ.get("CONTAINER_TEST") != "1":
        return None
    found = find_engine()
    return f"container engine: {found if isinstance(found, str) else versions(*found)}"


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    found = find_engine()
    if isinstance(found, str):
        if os.environ.get("CI") == "true":
            pytest.fail(f"no container can run in CI: {found}")
        pytest.skip(f"no container can run here: {found}")
    engine, compose = found
    stack = Stack(engine, compose, free_port())
    stack.down()  # a run killed before its teardown leaves its containers
    try:
        stack.up()
        stack.wait_resolved()
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
