"""training.parse_errors: a parse's errors split into wrong heads and wrong relations, by gold
relation and by sentence length."""

from app.model.decode import HeadTags
from training.data import Sentence
from training.parse_errors import error_table


def parsed(heads: list[int], relations: list[str]) -> dict[str, HeadTags]:
    """A predicted parse as the decoder gives it: heads by index, the root its own."""
    return {"deprel": HeadTags(relations, [1.0] * len(heads), heads)}


def test_errors_by_kind_relation_and_length() -> None:
    gold = Sentence("s1", "She saw it .", ["She", "saw", "it", "."],
                    heads=[2, 0, 2, 2], deprels=["nsubj", "root", "obj", "punct"])  # fmt: skip
    # "it" under "She" (a wrong head); "." right head, wrong relation; subtypes count as theirs
    pred = parsed([1, 1, 0, 1], ["nsubj:pass", "root", "obj", "obj"])
    lines = error_table([gold], [pred]).splitlines()
    assert lines[0] == "words 4, LAS errors 2: wrong head 1, right head wrong relation 1"
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:4]}
    assert rows == {"obj": ["1", "0.0", "50.0%"], "punct": ["1", "0.0", "50.0%"]}
    assert lines[4] == "sentence length: words, LAS"
    assert lines[5].split() == ["1-10", "4", "50.0"]
    assert lines[-1].split() == ["51+", "0", "-"]  # no such sentences
