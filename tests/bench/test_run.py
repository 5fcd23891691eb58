"""`python -m bench.run --quick --only ceiling,costs` end to end on tiny data: real servers, the
ceiling and the layer costs measured, then the report written from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import run


@pytest.mark.slow  # three real servers in subprocesses
def test_quick_run_of_the_ceiling_and_costs_phases(
    ewt_data: Path, model_dir: Path, tmp_path: Path
) -> None:
    dev = [f"# text = Sentence {i} is here .\n" + "".join(f"{k}\t{w}\t_\tX\n" for k, w in
           enumerate(["Sentence", str(i), "is", "here", "."], 1)) for i in range(64)]  # fmt: skip
    (ewt_data / "ud-ewt" / "en_ewt-ud-dev.conllu").write_text("\n".join(dev) + "\n")
    out = tmp_path / "results"
    run.main(["--quick", "--only", "ceiling,costs", "--data", str(ewt_data),
              "--model-dir", str(model_dir), "--out", str(out)])  # fmt: skip
    (written,) = out.glob("*-quick-ceiling-costs.json")
    results = json.loads(written.read_text())
    assert results["errors"] == {}
    for task in ("tag", "embed"):
        ceiling = results["ceiling"][task]
        assert ceiling["batches"] > 0 and ceiling["sentences_per_s"] > 0 and ceiling["cpu_s"] > 0
        assert results["costs"]["runs"][f"{task}.single"]["ms"]["ort"] > 0
        assert results["costs"]["p50_ms"][f"1 process.{task}"] > 0
    text = written.with_suffix(".md").read_text()
    assert "| the ceiling at 32 clients: raw ORT, sentences/s | " in text
    assert "## What a request costs, layer by layer" in text
    assert "| service /tag at 32 clients / raw ORT ceiling | n/a | >= 0.75 | n/a |" in text
