"""The models a server holds: one model folder (`BIGRU_MODEL_DIR`), or a folder of model folders
(`BIGRU_MODELS_DIR`, a model repository as Triton's), each model named after its folder.

Every model is loaded at start-up, and one that fails stops the server with the folder and the
reason: a model silently missing would be worse than no server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.model.backend import OnnxBackend
from app.model.errors import ModelLoadError

SHIPPED = "bigru-en"  # the default of a repository that has it and names no other


@dataclass(frozen=True)
class Repository:
    folders: dict[str, Path]  # name -> model folder, in name order
    default: str  # the model that answers a request that names none

    @classmethod
    def find(cls, model_dir: Path, models_dir: Path | None, default: str | None) -> Repository:
        """`models_dir`'s model folders if it is given, else `model_dir` alone; `default` as
        `default_among` picks it."""
        folders = {model_dir.name: model_dir} if models_dir is None else _folders(models_dir)
        return cls(folders, default_among(list(folders), default))

    def load(self, providers: list[str], threads: int) -> dict[str, OnnxBackend]:
        """Every model, loaded and checked; the first that fails is a ModelLoadError naming its
        folder."""
        backends = {}
        for name, folder in self.folders.items():
            try:
                backends[name] = OnnxBackend(folder, providers, threads)
            except ModelLoadError as e:
                raise ModelLoadError(f"model folder {folder}: {e}") from None
        return backends


def default_among(names: list[str], default: str | None) -> str:
    """`default` if it is one of `names`; None picks the only one, else bigru-en if present,
    else the first."""
    if default is None:
        return SHIPPED if SHIPPED in names else names[0]
    if default not in names:
        raise ModelLoadError(f"default model {default!r} is not among {names}")
    return default


def _folders(models_dir: Path) -> dict[str, Path]:
    """Each folder in `models_dir` (hidden ones aside) is a model; files beside them are not."""
    if not models_dir.is_dir():
        raise ModelLoadError(f"models directory {models_dir} does not exist")
    found = sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise ModelLoadError(f"models directory {models_dir} has no model folders")
    return {p.name: p for p in found}
