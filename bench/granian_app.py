"""`python -m bench.granian_app`: the service on granian, a Rust HTTP server, instead of uvicorn
with httptools: the same app (`app.main:app_from_env`, one per process) on HOST and PORT, with
BIGRU_PROCESSES processes (default: one per CPU of the affinity mask). For
`python -m bench.ab --base HEAD --module-head bench.granian_app`. Only the environment is read
here: bench/ stays off the service's layers but the model's (tests/test_layers.py)."""

import os

from granian import Granian
from granian.constants import Interfaces, Loops


def main() -> None:
    processes = os.environ.get("BIGRU_PROCESSES", "auto")
    workers = len(os.sched_getaffinity(0)) if processes == "auto" else int(processes)
    Granian(
        "app.main:app_from_env",
        address=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        factory=True,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    main()
