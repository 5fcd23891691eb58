"""training.relate: the teacher's cosine matrix matched cell by cell, a rated pair's cells
weighted as asked; the pairs and sentences it tunes on."""

from pathlib import Path

import numpy as np
import torch

from training.relate import neighbour_pairs, pair_weights, relational_loss, source_lines


def test_pair_weights_mark_each_rated_pairs_two_cells() -> None:
    w = pair_weights(6, 2, 5.0)  # rows 2-3 and 4-5 are the pairs
    marked = {(i, j) for i in range(6) for j in range(6) if w[i, j] == 5.0}
    assert marked == {(2, 3), (3, 2), (4, 5), (5, 4)}
    assert (w[w != 5.0] == 1.0).all()


def test_the_loss_is_zero_on_the_teachers_own_vectors_and_weights_move_it() -> None:
    teacher = torch.randn(6, 8)
    assert relational_loss(teacher, teacher, (8,)) < 1e-12  # the whole vector: the same cosines
    assert relational_loss(teacher, teacher, (4, 8)) > 0  # a prefix has cosines of its own
    student = teacher.clone()
    student[5] = -student[5]  # every cell of row 5 and column 5 is off
    plain = relational_loss(student, teacher, (8,))
    weighted = relational_loss(student, teacher, (8,), pair_weights(6, 1, 10.0))
    assert weighted > plain > 0


def test_neighbour_pairs_are_each_rows_nearest_others_not_its_copies() -> None:
    v = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [1, 0]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    pairs = neighbour_pairs(v, 1, chunk=2)  # chunks of 2 rows: the same answer as one
    assert pairs == [(0, 1), (1, 0), (2, 3), (3, 2), (4, 1)]


def test_source_lines_are_the_named_sources_without_stsb_dev(tmp_path: Path) -> None:
    (tmp_path / "sentences").mkdir()
    (tmp_path / "stsb").mkdir()
    lines = ["A caption.", "A dialogue turn.", "A dog runs.", "Another caption."]
    tags = ["coco_captions", "sgd", "coco_captions", "coco_captions"]
    (tmp_path / "sentences" / "sentences.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "sentences" / "sentences.source.txt").write_text("\n".join(tags) + "\n")
    (tmp_path / "stsb" / "sts-dev.csv").write_text("g\tf\ty\t1\t4.0\tA dog runs.\tA dog ran.\n")
    assert source_lines(tmp_path, ("coco_captions",)) == ["A caption.", "Another caption."]
