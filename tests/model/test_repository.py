"""The model repository: which folders are models, their names, the default, and a folder that
fails to load named in the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.model.errors import ModelLoadError
from app.model.repository import Repository, default_among


def repository_of(root: Path, model: Path, *names: str) -> Path:
    root.mkdir()
    for name in names:
        (root / name).symlink_to(model)
    return root


def test_one_model_is_named_after_its_folder(model_copy: Path) -> None:
    found = Repository.find(model_copy, None, None)
    assert found.folders == {model_copy.name: model_copy} and found.default == model_copy.name


def test_every_folder_is_a_model_named_after_it(model_copy: Path, tmp_path: Path) -> None:
    root = repository_of(tmp_path / "models", model_copy, "zeta", "alpha")
    (root / "README.md").write_text("not a model")
    (root / ".cache").mkdir()
    found = Repository.find(Path("/unused"), root, None)
    assert list(found.folders) == ["alpha", "zeta"] and found.default == "alpha"
    backends = found.load(["cpu"], 1)
    assert list(backends) == ["alpha", "zeta"]
    assert backends["alpha"].spec.sha256 == backends["zeta"].spec.sha256


def test_the_default_is_named_or_the_shipped_one_or_the_first() -> None:
    assert default_among(["a", "bigru-en"], None) == "bigru-en"
    assert default_among(["b", "a"], None) == "b"
    assert default_among(["a", "b"], "b") == "b"
    with pytest.raises(ModelLoadError, match="'c' is not among"):
        default_among(["a", "b"], "c")


def test_a_folder_that_fails_is_named_with_its_reason(model_copy: Path, tmp_path: Path) -> None:
    root = repository_of(tmp_path / "models", model_copy, "good")
    bad = root / "bad"
    bad.mkdir()
    (bad / "model.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=f"model folder {bad}: "):
        Repository.find(Path("/unused"), root, None).load(["cpu"], 1)


def test_an_empty_or_missing_repository_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        Repository.find(Path("/unused"), tmp_path / "nowhere", None)
    with pytest.raises(ModelLoadError, match="has no model folders"):
        Repository.find(Path("/unused"), tmp_path, None)
