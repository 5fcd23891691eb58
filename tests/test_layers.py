"""The layers, read from the imports (ast, every import, inside functions too): app.model <
app.core < app.http < app.main, calls go one way; training/ and bench/ use app.model only; and
no app module imports itself back through others."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

# An app module may import app modules of its own rank or below, never above.
RANKS = {
    "app.model": 0,
    "app.config": 1,  # settings, observability: below core and http, above the model
    "app.cgroup": 1,
    "app.cpus": 1,
    "app.memory": 1,
    "app.logs": 1,
    "app.metrics": 1,
    "app.core": 2,
    "app.http": 3,
    "app.main": 4,
    "app.processes": 4,  # the server processes' supervisor, which app.main runs
    "app.__main__": 5,
}
OUTSIDE = ("training", "bench")  # they may import app.model only
# bench.costs, in the server process it wraps (`python -m bench.costs`), puts a clock around
# functions of every layer to measure what each costs: it reaches them to time them.
INSTRUMENTS = {"bench.costs"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """The app modules `path` imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n == "app" or n.startswith("app.")}


def rank(name: str) -> int | None:
    return next((r for layer, r in RANKS.items() if name.startswith(layer)), None)


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_every_app_module_has_a_layer() -> None:
    assert [module_name(p) for p in sources("app") if rank(module_name(p)) is None] == ["app"]


def test_no_app_module_imports_a_higher_layer() -> None:
    wrong = []
    for path in sources("app"):
        own = rank(module_name(path))
        assert own is not None or module_name(path) == "app"
        for name in imported(path):
            theirs = rank(name)
            if own is not None and theirs is not None and theirs > own:
                wrong.append(f"{module_name(path)} imports {name}")
    assert not wrong


@pytest.mark.parametrize("folder", OUTSIDE)
def test_training_and_bench_use_the_model_layer_only(folder: str) -> None:
    wrong = [
        f"{module_name(path)} imports {name}"
        for path in sources(folder)
        if module_name(path) not in INSTRUMENTS
        for name in imported(path)
        if rank(name) not in (0, None)
    ]
    assert not wrong


# What only the model layer knows about a graph: its inputs and outputs, by name.
GRAPH_NAMES = {"EMBEDDING", "BOUNDARY", "GATES", "INPUTS", "outputs_by_task"}
GRAPH_ATTRIBUTES = {"task_outputs", "outputs", "output_names"}


def graph_words(path: Path) -> list[str]:
    """Where `path` names a graph input or output: a string like `upos_logits` or `embedding`,
    a name of app.model.spec's graph contract, or a spec attribute listing outputs."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.endswith("_logits") or node.value in ("embedding", "input_ids"):
                found.append(f"{path.name}:{node.lineno} {node.value!r}")
        elif isinstance(node, ast.ImportFrom) and node.module == "app.model.spec":
            found += [
                f"{path.name}:{node.lineno} {a.name}" for a in node.names if a.name in GRAPH_NAMES
            ]
        elif isinstance(node, ast.Attribute) and node.attr in GRAPH_ATTRIBUTES:
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
    return found


def test_the_core_never_names_a_graph_input_or_output() -> None:
    """The core schedules tasks (tag, embed, segment a batch); the model layer runs them."""
    assert [w for path in sources("app/core") for w in graph_words(path)] == []


def test_the_graph_check_sees_what_it_forbids(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from app.model.spec import EMBEDDING\nx = out['upos_logits']\ny = spec.task_outputs\n"
    )
    assert len(graph_words(probe)) == 3
