"""Domain errors: what the engine, batcher and backend raise. Each carries an `error_type`
and knows nothing of HTTP (app/http_errors.py maps them to statuses and bodies)."""

from __future__ import annotations


class ServiceError(Exception):
    error_type = "internal"


class InvalidInputError(ServiceError):
    error_type = "invalid_input"


class EmptyInputError(InvalidInputError):
    error_type = "empty_input"


class InputTooLargeError(ServiceError):
    error_type = "too_large"


class NoSentenceEncoderError(ServiceError):
    """The model is a tagger only: it has no sentence encoder to embed with."""

    error_type = "no_sentence_encoder"


class UnauthorizedError(ServiceError):
    error_type = "unauthorized"


class ClientGoneError(ServiceError):
    """The client disconnected before its answer was ready; its work was cancelled."""

    error_type = "client_gone"


class OverloadedError(ServiceError):
    error_type = "overloaded"


class NotReadyError(ServiceError):
    error_type = "not_ready"


class BackendError(ServiceError):
    error_type = "backend"


class ModelLoadError(ServiceError):
    """The model directory is missing, corrupt or inconsistent (raised at startup only)."""

    error_type = "model_load"
