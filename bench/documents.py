"""`python -m bench.documents`: /tag on documents against the same service's lists, one run;
writes bench/results/<date>-documents.json."""

import argparse
import datetime
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench import DATA, MODEL, ROOT, report
from bench.runtimes import novel_texts
from bench.service import Server, process_tree, rss_mb, server
from bench.targets import DOCUMENT_OVER_LISTS, DOCUMENT_P99_OVER_ALONE

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

    def post() -> float:
        t0 = time.perf_counter()
        headers = {"Content-Type": "application/json"}
        answer = httpx.post(f"{srv.base}/tag", content=doc, headers=headers, timeout=None,
                            trust_env=False)  # fmt: skip
        assert answer.status_code == 200, answer.status_code
        return time.perf_counter() - t0

    idle = peak = sum(rss_mb(p) for p in process_tree(srv.pid))
    with ThreadPoolExecutor(clients) as pool:
        posts = [pool.submit(post) for _ in range(clients)]
        while not all(f.done() for f in posts):
            peak = max(peak, sum(rss_mb(p) for p in process_tree(srv.pid)))
            time.sleep(0.1)
    return {"idle_mb": idle, "peak_mb": peak, "clients": clients,
            "request_s": [f.result() for f in posts]}  # fmt: skip


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
