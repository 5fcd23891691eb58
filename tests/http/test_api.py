"""Every route's contract (tests/contract.py), in-process through the real app and model."""

from tests.contract import *  # noqa: F403 (its tests and fixtures, collected here)
