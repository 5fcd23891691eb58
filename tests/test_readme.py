"""The README and the docs it links to stay true: every relative link resolves to a file in the
repository (and a `#section` to a heading there); every command the README shows is run, a
`make` command as a dry run (`make -n`, which fails on a target the Makefile lacks) and a
`curl` example as the same request sent to the real app on the shipped model, which must answer
200 with what the README shows (the answer with parts cut at `...`, floats to 4 digits)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.helpers import ROOT

README = ROOT / "README.md"
LINKED_DOCS = [
    README,
    ROOT / "docs" / "api.md",
    ROOT / "docs" / "performance.md",
    ROOT / "docs" / "training.md",
    ROOT / "models" / "bigru-en" / "README.md",
]
MAX_LINES = 300
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
_INLINE_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_HOST = "localhost:8000"


@dataclass
class Example:
    """A command of one of the README's ```sh blocks, and the output block after it, if any."""

    argv: list[str]
    output: str | None
    output_kind: str


def _examples(markdown: str) -> Iterator[Example]:
    fences = list(_FENCE.finditer(markdown))
    for i, fence in enumerate(fences):
        if fence.group(1) != "sh":
            continue
        after = fences[i + 1] if i + 1 < len(fences) else None
        output = after if after and after.start() == fence.end() else None
        for line in fence.group(2).replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                kind = output.group(1) if output else ""
                yield Example(argv, output.group(2) if output else None, kind)


def _prose(markdown: str) -> str:
    """The text outside fenced blocks."""
    return _FENCE.sub("", markdown)


def _inline_make_commands(markdown: str) -> list[list[str]]:
    spans = (" ".join(m.group(1).split()) for m in _INLINE_CODE.finditer(_prose(markdown)))
    return [shlex.split(span) for span in spans if span.startswith("make ")]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = _INLINE_CODE.sub(r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", _prose(path.read_text()), re.M)
    return {_slug(h) for h in headings}


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _shown_is_cut_from(shown: str, answer: str) -> bool:
    """Whether `shown` is `answer` with parts replaced by `...`, whitespace aside."""
    parts = re.sub(r"\s+", "", shown).split("...")
    pattern = ".*?".join(re.escape(part) for part in parts)
    return re.fullmatch(pattern, re.sub(r"\s+", "", answer), re.S) is not None


def _request(argv: list[str]) -> tuple[str, str, dict[str, str], str | None]:
    """(method, path, headers, body) of a curl command."""
    args = iter(argv[1:])
    method, url, headers, body = None, None, {}, None
    for arg in args:
        if arg == "-s":
            continue
        if arg == "-H":
            name, value = next(args).split(":", 1)
            headers[name.strip()] = value.strip()
        elif arg == "-d":
            body = next(args)
        elif arg == "-X":
            method = next(args)
        elif not arg.startswith("-") and url is None:
            url = arg
        else:
            raise AssertionError(f"this test does not send curl's {arg!r}: {shlex.join(argv)}")
    assert url is not None and url.startswith(f"{_HOST}/"), f"not this service's URL: {url}"
    return method or ("GET" if body is None else "POST"), url[len(_HOST) :], headers, body


README_EXAMPLES = list(_examples(README.read_text()))
CURL = [e for e in README_EXAMPLES if e.argv[0] == "curl"]
MAKE = [e.argv for e in README_EXAMPLES if e.argv[0] == "make"]
MAKE += _inline_make_commands(README.read_text())


def test_readme_is_short() -> None:
    lines = README.read_text().count("\n")
    assert lines <= MAX_LINES, f"README.md has {lines} lines; the rest belongs in docs/"


def test_readme_shows_only_commands_this_test_runs() -> None:
    others = [shlex.join(e.argv) for e in README_EXAMPLES if e.argv[0] not in ("curl", "make")]
    assert not others, f"commands no test runs: {others}"
    assert ["make", "serve"] in MAKE and ["make", "test"] in MAKE
    assert len(CURL) >= 6, "an example per main route: /tag, /embed, /v1/embeddings, TEI, /info"


@pytest.mark.parametrize("doc", LINKED_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    links = _LINK.findall(_INLINE_CODE.sub("", _prose(doc.read_text())))
    assert links, f"{doc} links to nothing"
    for link in links:
        if re.match(r"[a-z][a-z0-9+.-]*:", link):  # https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        assert path.exists(), f"{doc.name}: {link} -> {path} does not exist"
        assert path.is_relative_to(ROOT), f"{doc.name}: {link} leaves the repository"
        if anchor:
            assert anchor in _anchors(path), f"{doc.name}: {link}: no such heading"


@pytest.mark.parametrize("argv", MAKE, ids=shlex.join)
def test_make_command_is_a_target(argv: list[str]) -> None:
    dry = subprocess.run(["make", "-n", *argv[1:]], cwd=ROOT, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr


def test_make_serve_runs_the_app() -> None:
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "serve"],  # under `make test` too
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert dry.stdout.splitlines()[-1].endswith("/python -m app"), dry.stdout


@pytest.fixture(scope="module")
def shipped_client(shipped_model_dir: Path) -> Iterator[TestClient]:
    """The app on the model the README's outputs come from."""
    with TestClient(create_app(Settings(model_dir=shipped_model_dir))) as client:
        yield client


@pytest.mark.parametrize("example", CURL, ids=lambda e: " ".join(e.argv[2:3]))
def test_curl_example_answers_what_the_readme_shows(
    shipped_client: TestClient, example: Example
) -> None:
    method, path, headers, body = _request(example.argv)
    response = shipped_client.request(method, path, headers=headers, content=body)
    assert response.status_code == 200, response.text
    assert example.output is not None, f"no output shown after {shlex.join(example.argv)}"
    answer = response.text
    if example.output_kind == "json":
        answer = json.dumps(_rounded(response.json()), ensure_ascii=False)
    assert _shown_is_cut_from(example.output, answer), f"{path} answered {answer[:2000]}"
