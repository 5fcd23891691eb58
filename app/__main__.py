"""`python -m app` serves the model (what `make serve` calls)."""

from app.main import run

run()
