"""What the /tag writers share (app/http/writer.py): JSON lists written a run at a time read
as the list written whole; rows of numbers come back as they went in."""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from app.core.answers import TaggedText
from app.core.runs import TaggedPart
from app.http.writer import JsonList, Labels, Rows, TopList, Writer


def test_a_json_list_in_runs_is_the_list_written_whole() -> None:
    runs = [[1, 2], [], [3], [{"a": [4]}], []]
    written, out = JsonList(), b"["
    for run in runs:
        out += written.more(orjson.dumps(run))
    assert out + b"]" == orjson.dumps([x for run in runs for x in run])
    assert b"[" + JsonList().more(b"[]") + b"]" == b"[]"


def test_the_top_list() -> None:
    empty, two = TopList(), TopList()
    assert empty.end() == b"[]"
    assert two.next() + b"1" + two.next() + b"2" + two.end() == b"[1,2]"


def test_rows_come_back_in_chunks_as_they_went_in() -> None:
    rows = Rows(2)
    for i in range(5):
        rows.add((i, -i), i / 2)
    assert [r for chunk in rows.chunks(size=2) for r in chunk] == [
        ([i, -i], i / 2) for i in range(5)
    ]
    plain = Rows(3)
    plain.add((1, 2, 3))
    assert list(plain.chunks()) == [[([1, 2, 3], None)]]


def test_labels_are_numbered_in_order_of_first_use() -> None:
    labels = Labels()
    assert [labels.id(x) for x in ("PER", "LOC", "PER")] == [0, 1, 0]
    assert labels.names == ["PER", "LOC"]


class Calls(Writer):
    """Names each call it gets."""

    def begin(self, part: TaggedPart) -> bytes:
        return f"begin {part.index};".encode()

    def body(self, part: TaggedPart) -> bytes:
        return f"body {part.index}.{part.first_token};".encode()

    def finish(self) -> Iterator[bytes]:
        yield f"finish {self.current};".encode()

    def end(self) -> bytes:
        return b"end"


def test_an_input_begins_with_its_first_part_and_finishes_with_its_last() -> None:
    def part(index: int, first: int, last: bool) -> TaggedPart:
        return TaggedPart(index, TaggedText([], [], []), first, None, last)

    writer = Calls(None)
    parts = [part(0, 0, False), part(0, 5, True), part(1, 0, True)]
    out = b"".join(chunk for p in parts for chunk in writer.part(p)) + writer.end()
    assert out == b"begin 0;body 0.0;body 0.5;finish 0;begin 1;body 1.0;finish 1;end"
