"""Domain errors: what the engine and the batcher raise. Each carries an `error_type` and
knows nothing of HTTP (app/http/errors.py maps them to statuses and bodies)."""

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


class OverloadedError(ServiceError):
    error_type = "overloaded"


class NotReadyError(ServiceError):
    error_type = "not_ready"


class BackendError(ServiceError):
    """A batch failed in the backend or in its decoding; only that batch's requests see it."""

    error_type = "backend"


class ModelNotFoundError(ServiceError):
    """A request names a model the server does not hold."""

    error_type = "model_not_found"
