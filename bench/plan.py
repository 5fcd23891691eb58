"""What `bench.run` measures and for how long: sizes and time budgets, full and quick."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Log = Callable[[str, str], None]  # (phase, message)


@dataclass(frozen=True)
class Plan:
    """Sizes and time budgets; FULL fits in ~6 minutes on 2 cores, QUICK in about one."""

    batch_sizes: tuple[int, ...] = (1, 8, 32, 128)
    clients: tuple[int, ...] = (1, 8, 32, 128)
    engine_s: float = 3.0  # per (engine, path, batch size)
    replay_s: float = 4.0  # service's engine in process, no HTTP, per route
    warmup_s: float = 1.0  # per HTTP run, not counted
    service_s: float = 7.0  # measured window per HTTP run
    teacher_s: float = 6.0
    matmul_n: int = 1024
    matmul_s: float = 2.0
    # HTTP load: wrk (C; what `auto` picks when it is installed), or bench.load's Python
    # client, raw asyncio or httpx to cross-check
    load_tool: str = "auto"
    list_clients: int = 16  # /embed with lists of sentences: clients (enough to keep it busy) ...
    per_request: int = 32  # ... each sending this many per request (the teacher's batch)
    list_s: float = 14.0  # its window: runs of 7 s spread over +-10% here
    novel_texts: int = 200_000  # corpus sentences for the novel-text runs, half per route
    processes: tuple[int, ...] = (1, 2)  # BIGRU_PROCESSES settings, one server each
    spacy_s: float = 5.0  # per spaCy pipeline
    spacy_sentences: int | None = None  # EWT dev sentences it runs over (None: all)


FULL = Plan()
QUICK = Plan(
    batch_sizes=(1, 32),
    clients=(8, 32),
    engine_s=0.2,
    replay_s=0.3,
    warmup_s=0.2,
    service_s=0.6,
    teacher_s=0.3,
    list_s=0.6,
    matmul_n=256,
    matmul_s=0.2,
    novel_texts=20_000,
    spacy_s=0.2,
    spacy_sentences=200,
)
