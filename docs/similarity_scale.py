"""The page's similarity scale: the median cosine of STS-B dev pairs in each band of human rating.

Usage (the data layout of the README's training section):

    .venv/bin/python docs/similarity_scale.py ../shared/data/stsb/sts-dev.csv [models/bigru-en]

app/http/static/page.js reads a cosine as the band whose median is nearest, and its page text
quotes the first and last medians.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from training.data import read_stsb

BANDS = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5.01)]  # human ratings, 0 to 5


def cosines(pairs: list[tuple[str, str, float]], model_dir: Path) -> np.ndarray:
    """The cosine of each pair's embeddings, as /embed gives them."""
    out = []
    with TestClient(create_app(Settings(model_dir=model_dir))) as client:
        for i in range(0, len(pairs), 100):
            chunk = pairs[i : i + 100]
            texts = [a for a, _, _ in chunk] + [b for _, b, _ in chunk]
            v = np.asarray(client.post("/embed", json={"inputs": texts}).json())  # (2n, D)
            out.extend((v[: len(chunk)] * v[len(chunk) :]).sum(axis=1))
    return np.asarray(out)


def main(stsb: Path, model_dir: Path) -> None:
    pairs = read_stsb(stsb)
    cos = cosines(pairs, model_dir)
    gold = np.asarray([g for _, _, g in pairs])
    medians = []
    for lo, hi in BANDS:
        band = cos[(gold >= lo) & (gold < hi)]
        medians.append(float(np.median(band)))
        print(f"rated {lo}-{min(hi, 5)}: {len(band)} pairs, median cosine {medians[-1]:.3f}")
    cuts = ", ".join(f"{(a + b) / 2:.3f}" for a, b in zip(medians, medians[1:], strict=False))
    print(f"midpoints between bands: {cuts}")


if __name__ == "__main__":
    default_model = Path(__file__).resolve().parent.parent / "models" / "bigru-en"
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else default_model)
