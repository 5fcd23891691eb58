"""bench.models: the model repositories it measures."""

from __future__ import annotations

from pathlib import Path

from app.model.repository import Repository
from bench import models


def test_a_repository_holds_the_model_under_its_name_then_copies(
    model_copy: Path, tmp_path: Path
) -> None:
    folder = models.repository(tmp_path, model_copy, 3)
    assert models.repository(tmp_path, model_copy, 3) == folder  # made once
    found = Repository.find(Path("/unused"), folder, None)
    name = model_copy.name
    assert list(found.folders) == [name, f"{name}-2", f"{name}-3"]
    assert all(p.resolve() == model_copy.resolve() for p in found.folders.values())
