"""One-line logs, plain or JSON, each carrying the id of the request it belongs to."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from typing import TextIO

# Set per request by the api's middleware; "-" outside a request.
request_id: ContextVar[str] = ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
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


def configure_logging(json_lines: bool, level: str) -> None:
    """Route the root logger (and so uvicorn's) through one stderr handler."""
    root = logging.getLogger()
    root.handlers[:] = [log_handler(json_lines)]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # the gateway logs each request with its id; uvicorn's own line would repeat it
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
