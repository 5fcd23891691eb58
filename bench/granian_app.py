"""`python -m bench.granian_app`: the service on granian, a Rust HTTP server, instead of uvicorn
with httptools: the same app (`app.main:app_from_env`, one per process) on HOST and PORT, with
BIGRU_PROCESSES processes. For `python -m bench.ab --base HEAD --module-head bench.granian_app`."""

from granian import Granian
from granian.constants import Interfaces, Loops

from app.config import Settings


def main() -> None:
    settings = Settings()
    Granian(
        "app.main:app_from_env",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.processes,
        loop=Loops.uvloop,
        factory=True,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    main()
