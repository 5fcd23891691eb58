"""training.relate: the teacher's cosine matrix matched cell by cell, a rated pair's cells
weighted as asked."""

import torch

from training.relate import pair_weights, relational_loss


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
