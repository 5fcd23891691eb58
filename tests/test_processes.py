"""app.processes: each server process gets a socket of its own on the one port, so that the
kernel spreads new connections over them; a port that is taken stops the server at once."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from app.processes import Supervisor, reuse_port_socket

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "SO_REUSEPORT"), reason="the platform shares one socket instead"
)


def accepted(listeners: list[socket.socket], connections: int) -> list[int]:
    """How many of `connections` new connections to the listeners' port each one accepted."""
    port = listeners[0].getsockname()[1]
    counts = [0] * len(listeners)
    with ExitStack() as stack:
        for _ in range(connections):
            stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
        for i, listener in enumerate(listeners):
            listener.setblocking(False)
            while True:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    break
                conn.close()
                counts[i] += 1
    return counts


@pytest.fixture
def listeners() -> Iterator[list[socket.socket]]:
    """Two sockets on one port, as two server processes hold them, listening."""
    first = reuse_port_socket("127.0.0.1", 0)
    second = reuse_port_socket("127.0.0.1", first.getsockname()[1])
    for sock in (first, second):
        sock.listen(64)
    yield [first, second]
    first.close()
    second.close()


def test_new_connections_are_spread_over_the_sockets(listeners: list[socket.socket]) -> None:
    # a hash of each connection's addresses picks its socket: 32 of them all on one, or fewer
    # than 4 on either, would happen about twice in a million runs
    counts = accepted(listeners, 32)
    assert sum(counts) == 32
    assert min(counts) >= 4, counts


def test_each_process_gets_a_new_socket_on_the_first_ones_port() -> None:
    supervisor = Supervisor(uvicorn.Config(app=None, host="127.0.0.1", port=0, workers=2))
    with ExitStack() as stack:
        socks = [stack.enter_context(s) for _ in range(3) for s in supervisor.sockets]
        ports = {s.getsockname()[1] for s in socks}
        assert len(ports) == 1 and ports != {0}
        assert len({s.fileno() for s in socks}) == 3


def test_a_port_taken_stops_the_server_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = uvicorn.Config(app=None, host="127.0.0.1", port=port, workers=2)
        with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exited:
            Supervisor(config)
    assert exited.value.code == STARTUP_FAILURE
    [line] = [r.getMessage() for r in caplog.records if r.name == "app.processes"]
    assert line.startswith(f"cannot listen on 127.0.0.1:{port}")
