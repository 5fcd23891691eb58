"""training.sts: STS-B Spearman, and the gap between a model's cosines and the teacher's."""

from pathlib import Path

import numpy as np
import pytest

from training.sts import scale_figures, stsb_spearman

ROWS = [  # gold 0-5, then the two sentences
    (5.0, "A man is dancing.", "A man dances."),
    (0.5, "A cat sleeps.", "Stocks fell sharply today."),
    (0.0, "Rain again.", "He sold the car."),
    (3.0, "A woman sings.", "A man sings a song."),
]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "stsb").mkdir()
    lines = [f"g\tf\ty\t{i}\t{gold}\t{a}\t{b}" for i, (gold, a, b) in enumerate(ROWS)]
    (tmp_path / "stsb" / "sts-dev.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def table(dim: int, seed: int):
    """An encoder that gives each sentence a fixed random vector."""
    rng = np.random.default_rng(seed)
    vectors = {s: rng.normal(size=dim) for _, a, b in ROWS for s in (a, b)}
    return lambda sentences: np.stack([vectors[s] for s in sentences])


def test_the_teacher_against_itself_has_no_gap(data_dir: Path) -> None:
    teacher = table(8, 0)
    figures = scale_figures(teacher, teacher, data_dir, sizes=(4,))
    assert figures["gap_8"] == pytest.approx(0.0, abs=1e-6)
    assert figures["stsb_8"] == pytest.approx(figures["teacher_stsb"])
    assert figures["low_median_8"] == pytest.approx(figures["teacher_low_median"])
    assert figures["stsb_8"] == pytest.approx(stsb_spearman(teacher, data_dir))
    assert figures["gap_4"] > 0  # a prefix has cosines of its own


def test_the_gap_is_the_mean_absolute_difference_of_cosines(data_dir: Path) -> None:
    ours, teacher = table(6, 1), table(6, 2)

    def cosines(encode) -> np.ndarray:
        u = encode([a for _, a, _ in ROWS])
        v = encode([b for _, _, b in ROWS])
        return (u * v).sum(1) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1)

    figures = scale_figures(ours, teacher, data_dir, sizes=())
    expected = np.abs(cosines(ours) - cosines(teacher)).mean()
    assert figures["gap_6"] == pytest.approx(expected)
    assert figures["low_median_6"] == pytest.approx(np.median(cosines(ours)[[1, 2]]))
