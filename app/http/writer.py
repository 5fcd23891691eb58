"""An answer written part by part (app.core.runs), and what the writers of each format share:
JSON lists written a run of items at a time, and rows of numbers held until an input's tokens
are written."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator

from app.core.runs import TaggedPart


class Writer:
    """An answer written part by part: `part` for each, in order, then `end`. An input's parts
    come together, its first starting it (`begin`) and its last ending it (`finish`)."""

    def __init__(self, texts: list[str] | None) -> None:
        self.texts = texts  # the raw inputs; None: pre-tokenized
        self.current = -1  # the input being written

    def part(self, part: TaggedPart) -> Iterator[bytes]:
        if part.index != self.current:
            self.current = part.index
            yield self.begin(part)
        yield self.body(part)
        if part.last:
            yield from self.finish()

    def begin(self, part: TaggedPart) -> bytes:
        return b""

    def body(self, part: TaggedPart) -> bytes:
        raise NotImplementedError

    def finish(self) -> Iterator[bytes]:
        return iter(())

    def end(self) -> bytes:
        return b""


class JsonList:
    """A JSON list written a run of items at a time, each run orjson's bytes of a list."""

    def __init__(self) -> None:
        self.empty = True

    def more(self, items: bytes) -> bytes:
        """What continues this list with the items of `items` (brackets cut)."""
        if items == b"[]":
            return b""
        lead = b"" if self.empty else b","
        self.empty = False
        return lead + items[1:-1]


class TopList:
    """The top list of an answer, an item at a time."""

    def __init__(self) -> None:
        self.opened = False

    def next(self) -> bytes:
        """What goes before the next item."""
        lead = b"," if self.opened else b"["
        self.opened = True
        return lead

    def end(self) -> bytes:
        return b"]" if self.opened else b"[]"


class Rows:
    """Rows of `width` integers (and optionally one float), held as arrays until they are
    written after the tokens: 8 bytes a number, where an object costs some hundred."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.ints: array[int] = array("q")
        self.floats: array[float] = array("d")

    def add(self, ints: Iterable[int], value: float | None = None) -> None:
        self.ints.extend(ints)
        if value is not None:
            self.floats.append(value)

    def chunks(self, size: int = 4096) -> Iterator[list[tuple[list[int], float | None]]]:
        """The rows back, `size` at a time, each its integers and its float (None if none)."""
        w = self.width
        for first in range(0, len(self.ints) // w, size):
            flat = self.ints[first * w : (first + size) * w].tolist()
            values = self.floats[first : first + size].tolist() or [None] * (len(flat) // w)
            yield [(flat[k * w : (k + 1) * w], v) for k, v in enumerate(values)]


class Labels:
    """Each label's number in held rows."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._ids: dict[str, int] = {}

    def id(self, label: str) -> int:
        if label not in self._ids:
            self._ids[label] = len(self.names)
            self.names.append(label)
        return self._ids[label]
