"""`python -m bench.documents`: /tag on documents, against the same service in the same run.

- Speed: a 10k-word document posted by 4 clients against lists of 32 sentences posted by 4
  clients, in words per second (the issue's target: documents at >= 0.8x lists).
- Fairness: single-sentence /tag latency from 1 client, alone and while 4 clients post 20k-word
  documents (target: p99 with documents <= 3x its p99 alone).
- Memory: the server's peak RSS (all its processes) while 8 clients each post a 2 MiB document.
Texts are novel corpus sentences (bench.texts), joined into paragraphs of 5 sentences.
Writes bench/results/<date>-documents.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import threading
import time
from pathlib import Path
from typing import Any

from bench.load import Connection, summarize
from bench.service import ROOT, process_tree, rss_mb, server
from bench.texts import novel_texts


def document(sentences: list[str], words: int) -> str:
    """Paragraphs of 5 sentences, blank lines between them, until `words` words."""
    out: list[str] = []
    count = 0
    for i, s in enumerate(sentences):
        out.append(s + ("\n\n" if i % 5 == 4 else " "))
        count += len(s.split())
        if count >= words:
            break
    return "".join(out).strip()


def body(inputs: str | list[str]) -> bytes:
    return json.dumps({"inputs": inputs}).encode()


async def closed_loop(url: str, bodies: list[bytes], clients: int, seconds: float) -> list[float]:
    """Each client posts its bodies in turn until `seconds` pass; each request's latency (s)."""
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def client(k: int) -> None:
        conn = Connection(url)
        i = k
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            status = await conn.post(bodies[i % len(bodies)])
            assert status == 200, status
            latencies.append(time.perf_counter() - t0)
            i += clients
        conn.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    return latencies


def words_per_s(url: str, bodies: list[bytes], words: int, clients: int, seconds: float) -> float:
    t0 = time.perf_counter()
    done = len(asyncio.run(closed_loop(url, bodies, clients, seconds)))
    return done * words / (time.perf_counter() - t0)


def fairness(base: str, singles: list[bytes], docs: list[bytes], seconds: float) -> dict:
    alone = asyncio.run(closed_loop(f"{base}/tag", singles, 1, seconds))

    async def both() -> list[float]:
        background = asyncio.ensure_future(closed_loop(f"{base}/tag", docs, 4, seconds + 2))
        await asyncio.sleep(1.0)  # the documents are queued before the singles are timed
        timed = await closed_loop(f"{base}/tag", singles, 1, seconds)
        await background
        return timed

    busy = asyncio.run(both())
    a, b = summarize([x * 1000 for x in alone]), summarize([x * 1000 for x in busy])
    return {"alone_ms": a, "with_documents_ms": b, "p99_ratio": b["p99"] / a["p99"]}


def tree_rss_mb(pid: int) -> float:
    return sum(rss_mb(p) for p in process_tree(pid))


def peak_rss(base: str, pid: int, doc: bytes, clients: int) -> dict:
    idle = tree_rss_mb(pid)
    peak = [idle]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            peak[0] = max(peak[0], tree_rss_mb(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()

    async def once() -> list[float]:
        async def one() -> float:
            conn = Connection(f"{base}/tag")
            t0 = time.perf_counter()
            assert await conn.post(doc) == 200
            conn.close()
            return time.perf_counter() - t0

        return list(await asyncio.gather(*(one() for _ in range(clients))))

    try:
        seconds = asyncio.run(once())
    finally:
        stop.set()
        sampler.join()
    return {"idle_mb": idle, "peak_mb": peak[0], "clients": clients, "request_s": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "bigru-en")
    args = parser.parse_args(argv)
    sentences = novel_texts(args.data, 60_000)
    lists = [body(sentences[i : i + 32]) for i in range(0, 3200, 32)]
    list_words = sum(len(s.split()) for s in sentences[:3200]) / 100
    ten_k = [body(document(sentences[3200 + i * 700 :], 10_000)) for i in range(4)]
    twenty_k = [body(document(sentences[8000 + i * 1400 :], 20_000)) for i in range(4)]
    singles = [body(s) for s in sentences[20_000:22_000]]
    big = body(document(sentences[22_000:], 400_000))
    while len(big) > 2 * 1024 * 1024:  # the body limit
        big = body(json.loads(big)["inputs"][: -len(big) // 20])
    results: dict[str, Any] = {"date": datetime.date.today().isoformat()}
    with server(args.model, {}, Path("/tmp/bigru-bench-documents.log")) as (base, pid):
        url = f"{base}/tag"
        asyncio.run(closed_loop(url, lists[:10], 4, 2.0))  # warm-up
        results["lists_words_per_s"] = words_per_s(url, lists, list_words, 4, args.seconds)
        results["document_10k_words_per_s"] = words_per_s(url, ten_k, 10_000, 4, args.seconds)
        results["document_over_lists"] = (
            results["document_10k_words_per_s"] / results["lists_words_per_s"]
        )
        print(json.dumps(results), flush=True)
        results["fairness"] = fairness(base, singles, twenty_k, args.seconds)
        print(json.dumps(results["fairness"]), flush=True)
        results["memory"] = peak_rss(base, pid, big, 8)
        print(json.dumps(results["memory"]), flush=True)
    out = ROOT / "bench" / "results" / f"{results['date']}-documents.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
