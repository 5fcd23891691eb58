"""Settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # the default model dir does not depend on the cwd
    s = Settings()
    assert s.model_dir.is_absolute()
    assert s.model_dir == Path(__file__).resolve().parent.parent / "models" / "bigru-en"
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.providers == ["cpu"] and s.cors_origins == []
    assert (s.intra_op_threads, s.max_batch_size, s.max_batch_tokens) == (1, 32, 4096)
    assert (s.max_wait_ms, s.max_queue, s.max_body_bytes) == (0, 2048, 2 * 1024 * 1024)
    assert (s.max_inputs_per_request, s.max_chars_per_input, s.max_tokens_per_input) == (
        256,
        20_000,
        512,
    )
    assert s.api_key is None and s.log_json is False


def test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "HOST": "0.0.0.0",
        "PORT": "9001",
        "BIGRU_MODEL_DIR": "/srv/model",
        "BIGRU_PROVIDERS": "cuda, cpu",
        "BIGRU_INTRA_OP_THREADS": "2",
        "BIGRU_MAX_BATCH_SIZE": "1",
        "BIGRU_MAX_WAIT_MS": "0.5",
        "BIGRU_LOG_JSON": "true",
        "BIGRU_API_KEY": "k",
        "BIGRU_CORS_ORIGINS": "https://a.example,https://b.example",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert (s.host, s.port, s.model_dir) == ("0.0.0.0", 9001, Path("/srv/model"))
    assert s.providers == ["cuda", "cpu"]
    assert (s.intra_op_threads, s.max_batch_size, s.max_wait_ms) == (2, 1, 0.5)
    assert s.log_json is True and s.api_key == "k"
    assert s.cors_origins == ["https://a.example", "https://b.example"]


def test_host_and_port_have_no_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIGRU_HOST", "0.0.0.0")
    monkeypatch.setenv("BIGRU_PORT", "1")
    assert (Settings().host, Settings().port) == ("127.0.0.1", 8000)


def test_constructor_overrides_by_field_name() -> None:
    s = Settings(host="::1", port=1234, providers=["cpu"])
    assert (s.host, s.port) == ("::1", 1234)


@pytest.mark.parametrize(
    "name, value",
    [
        ("BIGRU_PROVIDERS", "tpu"),
        ("BIGRU_MAX_BATCH_SIZE", "0"),
        ("BIGRU_MAX_QUEUE", "many"),
        ("PORT", "70000"),
    ],
)
def test_bad_values(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        env = field.validation_alias or f"BIGRU_{name.upper()}"
        assert f"| `{env}` |" in readme, f"{env} is not in the README's configuration table"


def test_a_model_repository_and_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (Settings().models_dir, Settings().default_model) == (None, None)
    monkeypatch.setenv("BIGRU_MODELS_DIR", "/srv/models")
    monkeypatch.setenv("BIGRU_DEFAULT_MODEL", "drugs")
    s = Settings()
    assert (s.models_dir, s.default_model) == (Path("/srv/models"), "drugs")
    monkeypatch.setenv("BIGRU_MODELS_DIR", "")  # compose's `${MODELS_DIR:-}`, unset
    monkeypatch.setenv("BIGRU_DEFAULT_MODEL", "")
    assert (Settings().models_dir, Settings().default_model) == (None, None)
