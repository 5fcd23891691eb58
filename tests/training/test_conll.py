"""Reading a user's labelled files: columns, CoNLL-U, schemes, IOB2."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.conll import Column, ConllError, heads_of, parse_task, read_table, to_iob2


def test_iob1_and_bioes_become_iob2() -> None:
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC"]
    assert to_iob2(iob1) == ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    bioes = ["B-ORG", "E-ORG", "S-LOC", "S-LOC", "O", "B-PER", "I-PER", "E-PER"]
    assert to_iob2(bioes) == ["B-ORG", "I-ORG", "B-LOC", "B-LOC", "O", "B-PER", "I-PER", "I-PER"]


def test_space_separated_columns_with_two_heads(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text(
        "-DOCSTART- -X- O\n\n# a comment\nAspirin NOUN S-DRUG\n10 NUM B-DOSE\nmg NOUN E-DOSE\n"
        "\nOk X O\n"
    )
    table, columns = read_table(path, [Column("pos", 2), Column("ner", 3)])
    assert table.words == [["Aspirin", "10", "mg"], ["Ok"]]
    heads = heads_of([table])
    assert [(h.name, h.decoder) for h in heads] == [("pos", "softmax"), ("ner", "crf")]
    assert heads[1].labels == ["O", "B-DOSE", "I-DOSE", "B-DRUG", "I-DRUG"]
    assert table.labels["ner"][0] == ["B-DRUG", "B-DOSE", "I-DOSE"]


def test_conllu_reads_upos_and_skips_multiword_ranges(tmp_path: Path) -> None:
    path = tmp_path / "f.conllu"
    rows = [
        ["1-2", "don't", "_", "_"],
        ["1", "do", "do", "AUX"],
        ["2", "n't", "not", "PART"],
        ["3", "go", "go", "VERB"],
    ]
    path.write_text("# sent_id = 1\n" + "".join("\t".join(r + ["_"] * 6) + "\n" for r in rows))
    table, _ = read_table(path, None)
    assert table.words == [["do", "n't", "go"]]
    assert table.labels["tags"] == [["AUX", "PART", "VERB"]]
    assert heads_of([table])[0].decoder == "softmax"


def test_a_dev_file_with_another_scheme_is_refused_at_its_line(tmp_path: Path) -> None:
    train, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    train.write_text("a\tB-X\nb\tO\n")
    dev.write_text("a\tO\n\nb\tX\n")
    tables = [read_table(p, None)[0] for p in (train, dev)]
    with pytest.raises(ConllError, match=rf"^{dev}:3: label 'X'"):
        heads_of(tables)


@pytest.mark.parametrize("text", ["ner", "ner:1", "text:2", "2:ner"])
def test_task_needs_a_name_and_a_label_column(text: str) -> None:
    with pytest.raises(ConllError, match="--task"):
        parse_task(text)


def test_a_lemma_column_becomes_an_edit_script_head(tmp_path: Path) -> None:
    path = tmp_path / "train.conllu"
    rows = [("1", "The", "the", "DET"), ("2", "dogs", "dog", "NOUN"), ("3", "were", "be", "AUX")]
    path.write_text("".join(f"{i}\t{w}\t{lem}\t{u}\t_\t_\t_\t_\t_\t_\n" for i, w, lem, u in rows))
    table, _ = read_table(path, [parse_task("lemma:3"), parse_task("upos:4")])
    lemma, upos = heads_of([table])
    assert (lemma.name, lemma.decoder, upos.decoder) == ("lemma", "lemma", "softmax")
    assert table.labels["lemma"] == [["l|0|", "k|1|", "k|4|be"]]
    assert sorted(lemma.labels) == lemma.labels == sorted({"l|0|", "k|1|", "k|4|be"})
