"""What the model layer raises. The batcher turns a failed run into the service's
`BackendError`; a model that cannot load stops the service at startup (app/main.py)."""

from __future__ import annotations


class ModelLoadError(Exception):
    """The model directory is missing, corrupt or inconsistent."""


class RunError(Exception):
    """ONNX Runtime failed to run a batch."""
