"""`python -m app` serves the model (what `make serve` calls)."""

import os

# Before numpy loads its OpenBLAS: with a thread per core, OpenBLAS's extra threads spin after
# each of the parser's small matrix products, a third of a core per request that does nothing
# for the worker threads beside them. A deployer's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from app.main import run

run()
