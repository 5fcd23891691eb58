"""Several server processes on one port (`BIGRU_PROCESSES`), each listening on a socket of its
own.

uvicorn's supervisor hands every process one shared listening socket. Linux then wakes the
process that waited last for each new connection, so a client that opens its keep-alive
connections in a burst (a load balancer's pool, a benchmark) can get them all on one process,
which serves them for as long as they last while the others idle. With a socket per process
bound with SO_REUSEPORT, the kernel spreads new connections over the processes by a hash of
each one's addresses, as nginx's `reuseport` does. Where the platform has no SO_REUSEPORT, the
processes share one socket as uvicorn makes it.
"""

from __future__ import annotations

import logging
import socket

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

log = logging.getLogger(__name__)


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port with SO_REUSEPORT, not yet listening (the server process
    it is handed to listens on it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class Supervisor(Multiprocess):
    """uvicorn's supervisor (it starts, watches, restarts and stops the processes), each process
    it starts given a new socket on the port, bound with SO_REUSEPORT. uvicorn reads `sockets`
    once for each process it starts; the parent's copy of a socket is closed once the process
    has its own."""

    def __init__(self, config: uvicorn.Config) -> None:
        try:  # the first socket now: a port taken or an address not ours fails here, once
            first = reuse_port_socket(config.host, config.port)
        except OSError as e:
            log.error("cannot listen on %s:%s: %s", config.host, config.port, e)
            raise SystemExit(STARTUP_FAILURE) from e
        self._next: socket.socket | None = first
        self._port = first.getsockname()[1]  # PORT=0: the one the first socket got
        log.info("listening on %s:%d, a socket per process", config.host, self._port)
        super().__init__(config, sockets=[])

    @property  # type: ignore[override]  # uvicorn's is a plain attribute
    def sockets(self) -> list[socket.socket]:
        if self._next is not None:
            first, self._next = self._next, None
            return [first]
        return [reuse_port_socket(self.config.host, self._port)]

    @sockets.setter
    def sockets(self, value: list[socket.socket]) -> None:
        """uvicorn's constructor assigns its shared sockets here: each process gets its own."""


def supervisor(config: uvicorn.Config) -> Multiprocess:
    """The supervisor of `config.workers` processes: a socket each where the platform has
    SO_REUSEPORT, else uvicorn's one shared socket."""
    if hasattr(socket, "SO_REUSEPORT"):
        return Supervisor(config)
    return Multiprocess(config, sockets=[config.bind_socket()])
