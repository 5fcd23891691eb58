"""Results dict -> ratios and targets, and the Markdown summary (`plots.py` draws).

Pure functions of the results `bench.run` writes (so a fake dict tests them). A missing
measurement (a skipped or failed phase) gives "n/a", never an exception. The targets live in
`targets.py`, what bounds them in `bounds.py`, the measurement tables in `tables.py`.
"""

from __future__ import annotations

from typing import Any

from bench import bounds, tables, targets
from bench.rows import dig, fmt


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """The ratios the issues ask for, each target with its verdict (None: not measured), and
    what bounds them."""
    limits = bounds.bounds(results)
    values, errored = targets.values(results, limits)
    return {
        "ratios": values,
        "targets": targets.verdicts(values, errored),
        "physical": bounds.physical(results),
        "bounds": limits,
    }


def markdown(results: dict[str, Any], summary: dict[str, Any], plots: list[str]) -> str:
    """The human summary: targets first, then every table the targets come from."""
    meta, machine = results.get("meta", {}), results.get("machine", {})
    out = [f"# bigru-serve benchmark, {meta.get('date')} on {meta.get('host')}", ""]
    out.append(
        f"{machine.get('cpu')}, {machine.get('cores')} cores; load average at start "
        f"{fmt(machine.get('loadavg_start'), 2)}; onnxruntime {machine.get('onnxruntime')}, "
        f"torch {machine.get('torch')}, numpy {machine.get('numpy')}. "
        f"Model `{meta.get('model_dir')}`, commit {meta.get('git')}. Sentences: "
        f"{dig(results.get('corpus'), 'sentences')} EWT dev `# text` lines, "
        f"{fmt(dig(results.get('corpus'), 'mean_pieces'), 1)} WordPiece pieces on average. "
        f"HTTP load: {dig(results.get('plan'), 'load_tool')}."
    )
    for note in results.get("notes", []):
        out.append(f"\n> {note}")
    out += ["", "## Targets", "", "| target | measured | threshold | result |", "|---|---|---|---|"]
    for t in summary["targets"]:
        out.append(
            f"| {t['label']} | {fmt(t['value'], 2)} | {targets.threshold_text(t)} | "
            f"{targets.verdict(t)} |"
        )
    out += tables.engine_table(results) + tables.ceiling_table(results)
    out += tables.service_table(results) + tables.single_table(results)
    out += tables.processes_table(results) + tables.peer_table(results, summary)
    out += tables.spacy_table(results, summary)
    out += bounds.physical_table(results, summary) + bounds.section(summary)
    if results.get("errors"):
        out += ["", "## Errors", ""] + [f"- {k}: {v}" for k, v in results["errors"].items()]
    out += [""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(out) + "\n"
