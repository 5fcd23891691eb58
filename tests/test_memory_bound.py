"""What a request holds is within what it is admitted for (app.core.admission.request_cost),
measured on a real server process: its peak resident memory serving one body of each of the
worst kinds, above its peak once warmed up. A fresh process for each, as a replica starts."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from app.core.admission import MiB, request_cost
from app.memory import rss_bytes
from tests.helpers import start_server

pytestmark = pytest.mark.slow  # a server process per body, each body a few seconds
SIZE = MiB  # half the body limit: the costs grow with the body


def _fill(unit: str, key: str = "inputs") -> bytes:
    """`{key: unit * n}` of SIZE bytes or just under."""
    n = (SIZE - len(json.dumps({key: ""}))) // len(json.dumps(unit)[1:-1])
    return json.dumps({key: unit * n}).encode()


BODIES = {
    "a sentence per word": lambda: _fill("a\n"),
    "initials in sentences of the longest": lambda: _fill("A. "),
    "one long run of commas": lambda: _fill("a,"),
    "an entity every two words": lambda: _fill("Bob, "),
    "pre-tokenized, the most and longest": lambda: json.dumps(
        {"tokens": [["Obama,"] * 512] * 256}
    ).encode(),
    "a list of one-character strings": lambda: json.dumps(
        {"inputs": ["a"] * ((SIZE - 20) // 5)}
    ).encode(),
}


@pytest.mark.parametrize("kind", BODIES)
def test_a_request_holds_no_more_than_it_is_admitted_for(
    kind: str, model_dir: Path, tmp_path: Path
) -> None:
    body = BODIES[kind]()
    server = start_server(model_dir, tmp_path / "server.log", BIGRU_PROCESSES="1")
    try:
        warm = rss_bytes(server.proc.pid, "VmHWM")
        with httpx.Client(base_url=server.base, timeout=300) as client:
            answer = client.post("/tag", content=body, headers={"content-type": "application/json"})
        peak = rss_bytes(server.proc.pid, "VmHWM")
    finally:
        assert server.stop() == 0
    assert answer.status_code in (200, 413), answer.text[:300]
    held, allowed = peak - warm, request_cost(len(body))
    print(f"{kind}: {len(body)} bytes held {held / MiB:.1f} MiB of {allowed / MiB:.1f} admitted")
    assert held <= allowed, f"{held / MiB:.1f} MiB held, {allowed / MiB:.1f} MiB admitted"
