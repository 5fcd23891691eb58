"""Service settings: one `Settings`, every field typed, defaulted and set from the environment.

Env names are the field names with the `BIGRU_` prefix (`BIGRU_MAX_BATCH_SIZE=1`), except the
listen address, which uses the plain `HOST` and `PORT` most platforms set. List fields take a
comma-separated value (`BIGRU_PROVIDERS=cuda,cpu`). Model facts (labels, dims, vocab) are not
settings: they come from the model directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.cpus import usable_cpus

# The shipped model, found relative to the package so the service starts from any cwd.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "bigru-en"

CommaList = Annotated[list[str], NoDecode]


def usable_cores() -> int:
    """CPUs this process may use: its cgroup quota and affinity mask (app.cpus), not the host's
    core count. `usable_cpus` is looked up when this is called, not when Settings is defined,
    so that a test can set the count (tests/test_cpus.py)."""
    return usable_cpus()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BIGRU_", extra="ignore")

    host: str = Field("127.0.0.1", validation_alias="HOST")
    port: int = Field(8000, validation_alias="PORT", ge=0, le=65535)
    shutdown_timeout: float = 10.0  # seconds uvicorn waits for in-flight requests on SIGTERM

    model_dir: Path = DEFAULT_MODEL_DIR  # one model, named after its folder
    # A folder of model folders, each a model named after its folder (app.model.repository);
    # when set, it wins over model_dir. default_model answers requests that name no model.
    models_dir: Path | None = None
    default_model: str | None = None
    providers: CommaList = ["cpu"]  # in order of preference; CPU is always appended
    intra_op_threads: int = Field(1, ge=0)  # per run; 0 lets ORT pick
    # Server processes, each with its own model and workers; "auto" (the default): one per
    # usable CPU, since one process's event loop does at most one core of HTTP and tokenizing.
    processes: int = Field(default_factory=usable_cores, ge=1)
    # ORT runs at once per model in each process; 0: usable cores / processes
    workers: int = Field(0, ge=0)

    max_batch_size: int = Field(32, ge=1)  # sentences per ORT run; 1 turns batching off
    max_batch_tokens: int = Field(4096, ge=1)  # padded pieces per run, B * T
    max_wait_ms: float = Field(0.0, ge=0)  # how long the first sentence waits for company
    max_queue: int = Field(2048, ge=1)  # queued sentences; beyond -> 429
    max_padding: float = Field(1.25, ge=1.0)  # padded / real pieces a batch may grow to

    max_inputs_per_request: int = Field(256, ge=1)
    max_chars_per_input: int = Field(20_000, ge=1)
    max_tokens_per_input: int = Field(512, ge=1)  # words after tokenization
    max_pieces_per_input: int = Field(4096, ge=1)  # WordPiece pieces: the GRU's time steps
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1)
    # Memory (app.core.admission): the limit the processes share (None: the cgroup's, or the
    # machine's), the share of it they plan to use, and how long a request waits for its
    # share before a 429.
    memory_limit_mb: int | None = Field(None, ge=1)
    memory_target: float = Field(0.8, gt=0, le=1)
    admission_timeout: float = Field(30.0, ge=0)

    log_json: bool = False
    log_level: str = "INFO"
    api_key: str | None = None  # when set, all but /health and the page need `Bearer <key>`
    cors_origins: CommaList = []  # empty: no CORS headers at all

    @model_validator(mode="after")
    def _workers_per_process(self) -> Settings:
        """By default the processes share the cores: each runs cores / processes at once."""
        if self.workers == 0:
            self.workers = max(1, usable_cores() // self.processes)
        return self

    @field_validator("models_dir", "default_model", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """compose passes an unset `${VAR:-}` on as an empty string."""
        return None if value == "" else value

    @field_validator("processes", mode="before")
    @classmethod
    def _auto_processes(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return usable_cores()
        return value

    @field_validator("providers", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("providers")
    @classmethod
    def _known_providers(cls, value: list[str]) -> list[str]:
        value = [p.lower() for p in value]
        unknown = sorted(set(value) - {"cpu", "cuda"})
        if unknown:
            raise ValueError(f"unknown providers {unknown}; use cpu and/or cuda")
        return value
