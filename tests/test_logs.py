"""app.logs: one line per record, plain or JSON, with the id of the request it was logged in;
configured, every logger (uvicorn's too) goes through one queue to a writer thread."""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from app import logs

UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")
OURS = ("tests.logs", *UVICORN)  # the loggers these tests write with


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger of the test's own, at INFO, that passes nothing on to the root."""
    log = logging.getLogger("tests.logs")
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log
    log.handlers[:] = []
    log.setLevel(logging.NOTSET)
    log.propagate = True


def lines_of(logger: logging.Logger, json_lines: bool) -> io.StringIO:
    stream = io.StringIO()
    logger.addHandler(logs.log_handler(json_lines, stream))
    return stream


def in_request(request_id: str, log: logging.Logger, *args: object, **kwargs: object) -> None:
    """Log as a request's handler does: in a context of its own, holding the request's id."""

    def log_there() -> None:
        logs.request_id.set(request_id)
        log.info(*args, **kwargs)

    thread = threading.Thread(target=log_there)  # a thread starts with a context of its own
    thread.start()
    thread.join()


def test_a_json_line_carries_the_request_id(logger: logging.Logger) -> None:
    stream = lines_of(logger, json_lines=True)
    in_request("req-7", logger, "tagged %d words in «%s»", 3, "Zürich")
    logger.info("outside a request")
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first.keys() == {"time", "level", "logger", "request_id", "message"}
    assert (first["level"], first["logger"]) == ("INFO", "tests.logs")
    assert (first["request_id"], first["message"]) == ("req-7", "tagged 3 words in «Zürich»")
    assert second["request_id"] == "-" and logs.request_id.get() == "-"


def test_a_traceback_stays_on_its_line(logger: logging.Logger) -> None:
    json_stream, plain_stream = lines_of(logger, True), lines_of(logger, False)
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logger.exception("batch failed")
    [entry] = [json.loads(line) for line in json_stream.getvalue().splitlines()]
    assert entry["message"] == "batch failed"
    assert "Traceback" in entry["exc"] and "ValueError: bad\nvalue" in entry["exc"]
    [plain] = plain_stream.getvalue().splitlines()
    assert "ERROR tests.logs [-] batch failed\\nTraceback" in plain
    assert plain.endswith("ValueError: bad\\nvalue")


def test_a_plain_line(logger: logging.Logger) -> None:
    stream = lines_of(logger, json_lines=False)
    in_request("req-8", logger, "POST /tag 200")
    [line] = stream.getvalue().splitlines()
    assert line.endswith(" INFO tests.logs [req-8] POST /tag 200")


@contextmanager
def configured() -> Iterator[None]:
    """Whatever `configure_logging` changes (the root's handlers and level, uvicorn's loggers,
    the record fields logging collects, the writer thread), put back on the way out, within
    the test (pytest's own capture handlers on the root come and go with each of its phases)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    loggers = {name: logging.getLogger(name) for name in UVICORN}
    saved = {
        name: (log.handlers[:], log.propagate, log.level, log.disabled)
        for name, log in loggers.items()
    }
    fields = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")
    collected = {name: getattr(logging, name) for name in fields}
    listener = logs._listener
    try:
        yield
    finally:
        logs._stop_writer()
        logs._listener = listener
        for name, value in collected.items():
            setattr(logging, name, value)
        for name, (uvicorn_handlers, propagate, log_level, disabled) in saved.items():
            loggers[name].handlers[:] = uvicorn_handlers
            loggers[name].propagate, loggers[name].disabled = propagate, disabled
            loggers[name].setLevel(log_level)
        root.handlers[:] = handlers
        root.setLevel(level)


def written(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What the writer wrote to stderr from our loggers."""
    lines = capsys.readouterr().err.splitlines()
    return [
        line for line in lines if any(f" {name} " in line or f'"{name}"' in line for name in OURS)
    ]


def test_every_logger_goes_through_one_queue_with_the_id_of_its_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = logging.getLogger("tests.logs")
    with configured():
        logs.configure_logging(json_lines=True, level="info")
        [queued] = logging.getLogger().handlers
        assert isinstance(queued, logging.handlers.QueueHandler)
        # the id is the request's, taken where it logs, not in the writer thread's context
        in_request("req-1", log, "tagged %d", 3)
        log.debug("below the level")
        logging.getLogger("uvicorn.error").info("Started server process")
        logging.getLogger("uvicorn.access").info("GET /health 200")  # the edge logs requests
        for i in range(500):
            log.info("line %d", i)
    # the writer stopped as it does at exit: all that was queued is written
    records = [json.loads(line) for line in written(capsys)]
    assert [(r["logger"], r["request_id"], r["message"]) for r in records[:2]] == [
        ("tests.logs", "req-1", "tagged 3"),
        ("uvicorn.error", "-", "Started server process"),
    ]
    assert [r["message"] for r in records[2:]] == [f"line {i}" for i in range(500)]


def test_configuring_again_replaces_the_writer(capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("tests.logs")
    with configured():
        logs.configure_logging(json_lines=False, level="warning")
        log.info("below the level")
        log.warning("plain")
        logs.configure_logging(json_lines=True, level="INFO")
        log.info("json")
        assert len(logging.getLogger().handlers) == 1
    plain, last = written(capsys)
    assert plain.endswith(" WARNING tests.logs [-] plain")
    assert json.loads(last)["message"] == "json"
