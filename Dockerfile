# bigru-serve on CPU: `docker build -t bigru-serve .`, then `docker run -p 8000:8000 bigru-serve`.
# The GPU image is Dockerfile.cuda; docs/deploy.md covers compose, scaling and Kubernetes.

# --- builder: a venv holding the runtime dependencies and the `app` package, nothing else ----
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src

# Dependencies first, in their own layer, so editing the code does not reinstall them. They are
# requirements.lock as written (`make lock`): exact versions of pyproject's [project]
# dependencies and all they pull in, so builds a month apart install the same packages; the dev
# extra (torch, onnx, the test tools) is not in it.
COPY requirements.lock ./
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps -r requirements.lock

# The package itself. Only app/ is in the context, so the wheel holds `app` alone; the training
# CLI's entry point would be a broken script here. `pip check` fails the build if the lock has
# drifted from pyproject's ranges or misses a dependency.
COPY pyproject.toml LICENSE ./
COPY app/ app/
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps . \
    && /opt/venv/bin/pip check \
    && rm -f /opt/venv/bin/bigru

# --- runtime: Python, the venv and the model; no compiler, no pip install ----------------------
FROM python:3.11-slim-bookworm AS runtime

# A fixed numeric id, so Kubernetes can check runAsNonRoot against the image.
RUN groupadd --system --gid 10001 bigru \
    && useradd --system --uid 10001 --gid bigru --no-create-home --shell /usr/sbin/nologin bigru

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Owned by root and read-only to the service: a model is swapped by mounting another directory
# and pointing BIGRU_MODEL_DIR at it (see docker-compose.yml), not by writing here.
COPY models/bigru-en/ /app/models/bigru-en/

# Settings come from the environment (app/config.py): HOST and PORT plus any BIGRU_* variable.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    BIGRU_MODEL_DIR=/app/models/bigru-en

USER 10001:10001
EXPOSE 8000

# /health is 200 once the model is loaded and warmed up, 503 before; urlopen raises on both a
# 503 and a refused connection. slim has no curl.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]

# The same command `make serve` ends in (tests/test_deploy.py holds them together). SIGTERM
# drains in-flight requests for up to BIGRU_SHUTDOWN_TIMEOUT seconds, then exits 0.
CMD ["python", "-m", "app"]
