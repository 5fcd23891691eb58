"""`python -m bench.documents`: /tag on documents against the same service's lists, one run:
10k-word documents against lists of 32 sentences (4 clients each, words/s); single-sentence p99
alone and beside 4 clients posting 20k-word documents; peak RSS while 8 clients post 2 MiB each.
Writes bench/results/<date>-documents.json.
"""

import argparse
import asyncio
import datetime
import json
import threading
import time
from pathlib import Path
from typing import Any

from bench import DATA, MODEL, ROOT, report
from bench.load import Connection
from bench.service import Server, process_tree, rss_mb, server
from bench.targets import DOCUMENT_OVER_LISTS, DOCUMENT_P99_OVER_ALONE
from bench.texts import novel_texts

LIMIT = 2 * 1024 * 1024  # the service's body limit


def document(sentences: list[str], words: int) -> str:
    """Paragraphs of 5 sentences, blank lines between them, until `words` words."""
    out: list[str] = []
    count = 0
    for i, s in enumerate(sentences):
        out.append(s + ("\n\n" if i % 5 == 4 else " "))
        if (count := count + len(s.split())) >= words:
            break
    return "".join(out).strip()


def fairness(srv: Server, singles: list[str], docs: list[str], seconds: float) -> dict:
    """Single-sentence latency from 1 client alone, then beside 4 clients posting `docs` (they
    start a second earlier, so the documents are queued before the singles are timed)."""
    alone = srv.load("tag", 1, singles, (0.0, seconds))["latency_ms"]
    background = threading.Thread(target=srv.load, args=("tag", 4, docs, (0.0, seconds + 2)))
    background.start()
    time.sleep(1.0)
    beside = srv.load("tag", 1, singles, (0.0, seconds))["latency_ms"]
    background.join()
    return {
        "alone_ms": alone,
        "with_documents_ms": beside,
        "p99_ratio": beside["p99"] / alone["p99"],
    }


def peak_rss(srv: Server, doc: bytes, clients: int) -> dict:
    """The server's RSS (all its processes) sampled every 0.1 s while `clients` post `doc`
    once each, at once (each answer takes minutes: a closed loop would time out)."""
    idle = peak = sum(rss_mb(p) for p in process_tree(srv.pid))
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.1):
            peak = max(peak, sum(rss_mb(p) for p in process_tree(srv.pid)))

    async def one() -> float:
        conn, t0 = Connection(f"{srv.base}/tag"), time.perf_counter()
        assert await conn.post(doc) == 200
        conn.close()
        return time.perf_counter() - t0

    async def all_clients() -> list[float]:
        return list(await asyncio.gather(*(one() for _ in range(clients))))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        seconds = asyncio.run(all_clients())
    finally:
        stop.set()
        sampler.join()
    return {"idle_mb": idle, "peak_mb": peak, "clients": clients, "request_s": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--model", type=Path, default=MODEL)
    args = parser.parse_args(argv)
    sentences = novel_texts(args.data, 60_000)
    words_per_sentence = sum(len(s.split()) for s in sentences[:3200]) / 3200
    ten_k = [document(sentences[3200 + i * 700 :], 10_000) for i in range(4)]
    twenty_k = [document(sentences[8000 + i * 1400 :], 20_000) for i in range(4)]
    big = document(sentences[22_000:], 400_000)
    while len(body := json.dumps({"inputs": big}).encode()) > LIMIT:
        big = big[: -len(big) // 20]
    results: dict[str, Any] = {"date": datetime.date.today().isoformat()}
    with server(args.model, {}, Path("/tmp/bigru-bench-documents.log")) as srv:
        window = (2.0, args.seconds)  # 2 s warm-up
        lists = srv.load("tag", 4, sentences[:3200], window, 32)["sentences_per_s"]
        docs = srv.load("tag", 4, ten_k, window)["requests_per_s"]
        results["lists_words_per_s"] = lists * words_per_sentence
        results["document_10k_words_per_s"] = docs * 10_000
        results["document_over_lists"] = ratio = docs * 10_000 / results["lists_words_per_s"]
        results["fairness"] = fair = fairness(srv, sentences[20_000:22_000], twenty_k, args.seconds)
        results["memory"] = peak_rss(srv, body, 8)
    results["pass"] = {"document_over_lists": ratio >= DOCUMENT_OVER_LISTS,
                       "fairness": fair["p99_ratio"] <= DOCUMENT_P99_OVER_ALONE}  # fmt: skip
    out = ROOT / "bench" / "results" / f"{results['date']}-documents.json"
    report.log("done", f"documents / lists {ratio:.2f}, p99 beside documents / alone "
               f"{fair['p99_ratio']:.2f}, peak RSS {results['memory']['peak_mb']:,.0f} MB: "
               f"{report.write_json(out, results)}")  # fmt: skip


if __name__ == "__main__":
    main()
