"""Re-run the examples of docs/api.md against a live server and write their real outputs back.

Usage, with the service running (`make serve` in another shell):

    .venv/bin/python docs/readme_examples.py [docs/api.md] [--base http://localhost:8000]

Each ```sh block whose command is `curl ... localhost:8000...` and that is followed at once by
an output block gets that block replaced (with `--base`, the commands are sent there instead).
JSON is printed with indent 1, floats rounded to 4 digits and float lists longer than 8 cut to
their first 4 and `...`; plain text (/metrics) keeps only the lines whose metric and labels the
block already showed, in the same order. Each ```python block followed at once by a ```text
block gets what it prints (tests/http/test_clients.py runs them too, against its own server,
and compares). The README shows a few of the same requests with their outputs cut by hand;
tests/test_readme.py checks those against the app.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import subprocess
from pathlib import Path

_BLOCK = re.compile(r"```sh\n(curl [^`]*?localhost:8000[^`]*?)```\n```(\w*)\n(.*?)```", re.S)
_PYTHON = re.compile(r"```python\n(.*?)```\n```text\n(.*?)```", re.S)
_CUT = "\x00cut\x00"
BASE = "http://localhost:8000"
API_MD = Path(__file__).resolve().parent / "api.md"


def _shorten(value: object) -> object:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        if len(value) > 8 and all(isinstance(v, float) for v in value):
            return [round(v, 4) for v in value[:4]] + [_CUT]
        return [_shorten(v) for v in value]
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    return value


def _json(text: str) -> str:
    dumped = json.dumps(_shorten(json.loads(text)), indent=1, ensure_ascii=False)
    return dumped.replace(json.dumps(_CUT), "...") + "\n"


def _metrics(text: str, shown: str) -> str:
    live = {line.rsplit(" ", 1)[0]: line for line in text.splitlines() if line[:1] != "#"}
    keys = [line.rsplit(" ", 1)[0] for line in shown.splitlines() if line.strip()]
    return "".join(live[k] + "\n" for k in keys if k in live)


def refresh(markdown: Path, base: str = BASE) -> None:
    source = markdown.read_text()
    address = base.split("://", 1)[-1]

    def replace(m: re.Match[str]) -> str:
        command, kind, shown = m.group(1), m.group(2), m.group(3)
        sent = command.replace("localhost:8000", address)
        out = subprocess.run(["bash", "-c", sent], capture_output=True, text=True, check=True)
        body = _json(out.stdout) if kind == "json" else _metrics(out.stdout, shown)
        return f"```sh\n{command}```\n```{kind}\n{body}```"

    def replace_python(m: re.Match[str]) -> str:
        return f"```python\n{m.group(1)}```\n```text\n{run_python(m.group(1), base)}```"

    markdown.write_text(_PYTHON.sub(replace_python, _BLOCK.sub(replace, source)))


def python_examples(markdown: Path) -> list[tuple[str, str]]:
    """(code, the output shown) of each Python example."""
    return [(m.group(1), m.group(2)) for m in _PYTHON.finditer(markdown.read_text())]


def run_python(code: str, base: str = BASE) -> str:
    """What a Python example prints, run here against the server at `base`."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.replace(BASE, base), "<docs/api.md example>", "exec"), {})
    return out.getvalue()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("markdown", nargs="?", type=Path, default=API_MD)
    parser.add_argument("--base", default=BASE, help="the server to send the examples to")
    args = parser.parse_args()
    refresh(args.markdown, args.base)
