"""One-line logs, plain or JSON, each carrying the id of the request it belongs to."""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
from contextvars import ContextVar
from typing import TextIO

# Set per request by the HTTP edge (app/http/edge.py); "-" outside a request.
request_id: ContextVar[str] = ContextVar("request_id", default="-")
_listener: logging.handlers.QueueListener | None = None  # the writer thread, once configured


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):  # a queued record has its own already
            record.request_id = request_id.get()
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\\n")  # tracebacks stay on one line too


def log_handler(json_lines: bool, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing one line per record, request id included (to stderr by default)."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(_JsonFormatter() if json_lines else _PlainFormatter())
    return handler


class _Queued(logging.handlers.QueueHandler):
    """Hands each record, as it is, to the writer thread: formatting and the write to stderr
    happen there, off the event loop, which writes a line per request."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def configure_logging(json_lines: bool, level: str) -> None:
    """Route the root logger (and so uvicorn's) through one queue to a writer thread that
    writes each record as one stderr line; what is queued is written at exit."""
    global _listener
    # What the lines never show is not collected per record (the logging HOWTO's
    # "Optimization": no caller lookup, thread or process names).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if _listener is None:
        atexit.register(_stop_writer)  # once: it stops whichever writer is current
    else:
        _listener.stop()
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    queued = _Queued(records)
    queued.addFilter(_RequestIdFilter())  # on the request's own thread, where its id is set
    _listener = logging.handlers.QueueListener(records, log_handler(json_lines))
    _listener.start()
    root = logging.getLogger()
    root.handlers[:] = [queued]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):  # at the root's level, whatever set them before
        uvicorn_log = logging.getLogger(name)
        uvicorn_log.handlers[:] = []
        uvicorn_log.propagate, uvicorn_log.disabled = True, False
        uvicorn_log.setLevel(logging.NOTSET)
    # the edge logs each request with its id; uvicorn's own line would repeat it
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False


def _stop_writer() -> None:
    """Write what is still queued, then end the writer thread (once: a listener stopped twice
    raises)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
