"""Deployment files: Dockerfiles, requirements.lock, .dockerignore, docker-compose.yml, deploy/k8s.

Each file is checked by the linter or schema made for it (hadolint, the compose spec,
Kubernetes' own schemas) and against the code it must agree with: `make serve`'s command, the
settings, pyproject's dependencies, the shutdown timeout, the ports. The load balancer's config
is tests/test_nginx.py's; `make container-test` (tests/container) builds and runs it all.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from app.config import Settings
from tests.dockerfiles import dockerfile_stages, tool

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = sorted(ROOT.glob("Dockerfile*"))
COMPOSE = ROOT / "docker-compose.yml"
LOCK = ROOT / "requirements.lock"
K8S = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
K8S_VERSIONS = ("1.30.0", "newest")  # oldest we claim; newest kubernetes-validate bundles
BIN = Path(sys.executable).parent  # hadolint, check-jsonschema, kubernetes-validate (dev extra)
TORCH_LIKE = ("torch", "triton", "onnx")  # never in the runtime (onnx: the exporter's package)


# --- reading the files ---------------------------------------------------------------------


def make_serve_command() -> list[str]:
    """The last line of the Makefile's serve recipe, with $(BIN)/ dropped."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"serve\s*:", line))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    argv = shlex.split(recipe[-1])
    return [argv[0].removeprefix("$(BIN)/"), *argv[1:]]


def default_of(value: str) -> str:
    """`${VAR:-default}` -> default."""
    match = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
    assert match, f"{value!r} is not ${{VAR:-default}}"
    return match.group(1)


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m)", duration)
    assert match, duration
    return float(match.group(1)) * (60 if match.group(2) == "m" else 1)


def docker_ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `path` out of the build context.

    As moby's patternmatcher: the last pattern that matches the path or one of its parent
    directories decides; `!` re-includes; `*` stays within one path segment, `**` crosses them.
    """
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = os.path.normpath(raw.removeprefix("!")).lstrip("/")
        regex = ""
        for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                token, re.escape(token)
            )
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def runtime_closure(requirements: list[str]) -> set[str]:
    """Every distribution the requirements pull in, read from the metadata installed here."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        for line in importlib.metadata.requires(name) or []:
            dep = Requirement(line)
            extras = req.extras or {""}
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in extras):
                todo.append(dep)
    return seen


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def k8s_objects() -> dict[str, dict]:
    return {doc["kind"]: doc for f in K8S for doc in yaml.safe_load_all(f.read_text()) if doc}


# --- Dockerfiles ---------------------------------------------------------------------------


def test_there_are_a_cpu_and_a_cuda_dockerfile() -> None:
    assert [p.name for p in DOCKERFILES] == ["Dockerfile", "Dockerfile.cuda"]


@pytest.mark.slow  # runs a linter in a subprocess
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_is_clean(dockerfile: Path) -> None:
    done = subprocess.run(
        [tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_runs_the_command_make_serve_runs(dockerfile: Path) -> None:
    """One start command: the image's CMD is what `make serve` ends in."""
    (cmd,) = dockerfile_stages(dockerfile)[-1].each("CMD")
    assert json.loads(cmd) == make_serve_command() == ["python", "-m", "app"]
    assert not dockerfile_stages(dockerfile)[-1].each("ENTRYPOINT")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_runtime_stage_is_the_venv_the_model_and_a_non_root_user(dockerfile: Path) -> None:
    *_, runtime = dockerfile_stages(dockerfile)
    assert runtime.name == "runtime"
    runs = " ".join(runtime.each("RUN"))
    assert "pip install" not in runs and "pip3 install" not in runs
    assert not re.search(r"\b(gcc|g\+\+|build-essential|python3-dev|cmake)\b", runs)
    assert "--from=builder /opt/venv /opt/venv" in runtime.each("COPY")

    env = runtime.env()
    assert env["HOST"] == "0.0.0.0"
    assert runtime.each("EXPOSE") == [env["PORT"]]
    (model_copy,) = [c for c in runtime.each("COPY") if c.startswith("models/")]
    source, target = model_copy.split()
    assert source.rstrip("/") == "models/bigru-en"
    assert target.rstrip("/") == env["BIGRU_MODEL_DIR"]

    (user,) = runtime.each("USER")
    assert int(user.split(":")[0]) > 0, "numeric, so Kubernetes can check runAsNonRoot"
    (healthcheck,) = runtime.each("HEALTHCHECK")
    assert "/health" in healthcheck and "urllib.request" in healthcheck


def test_cuda_image_uses_onnxruntime_gpu_and_asks_for_cuda_first() -> None:
    stages = dockerfile_stages(ROOT / "Dockerfile.cuda")
    assert all(
        re.fullmatch(r"nvidia/cuda:[\d.]+-cudnn-runtime-ubuntu[\d.]+", s.base) for s in stages
    )
    providers = stages[-1].env()["BIGRU_PROVIDERS"]
    assert providers == "cuda,cpu"
    assert Settings(providers=providers).providers == ["cuda", "cpu"]


def _builder_requirements(dockerfile: Path, workdir: Path) -> list[str]:
    """What the builder hands `pip install -r`: the lock as is, or as the builder's own shell
    commands rewrite it (run here on this repo's lock, with the ARGs' defaults)."""
    builder = dockerfile_stages(dockerfile)[0]
    assert builder.name == "builder"
    (run,) = [r for r in builder.each("RUN") if "pip install" in r and " -r " in r]
    listed = re.search(r"pip install [^&]* -r (\S+)", run).group(1)
    if listed == LOCK.name:
        return LOCK.read_text().split("\n")
    rewrite = [c.strip() for c in run.split(" && ") if listed in c and "pip install" not in c]
    env = {**os.environ}
    for arg in builder.each("ARG"):
        key, _, default = arg.partition("=")
        env[key] = default
    shutil.copy(LOCK, workdir)
    subprocess.run(["sh", "-c", " && ".join(rewrite)], cwd=workdir, env=env, check=True)
    return (workdir / listed).read_text().split("\n")


def lock_pins(lines: list[str]) -> dict[str, str]:
    """{canonical name: version} of requirement lines that must each be one exact pin."""
    pins: dict[str, str] = {}
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==" and not req.marker and not req.extras, line
        assert canonicalize_name(req.name) not in pins, f"{req.name} twice"
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_lock_agrees_with_pyproject() -> None:
    """Every runtime dependency pinned at a version its range admits; no dev package in."""
    import tomllib

    base = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = lock_pins(LOCK.read_text().splitlines())
    for dep in map(Requirement, base):
        if dep.marker and not dep.marker.evaluate():  # the images run Linux, as this host
            continue
        version = pins.get(canonicalize_name(dep.name))
        assert version, f"{dep.name} is not in {LOCK.name}: run make lock"
        assert dep.specifier.contains(version, prereleases=True), (
            f"{dep} but {LOCK.name} has {version}"
        )
    assert not [d for d in pins if d in TORCH_LIKE or d.startswith("nvidia-")], pins


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_builder_installs_the_lock_and_nothing_else(dockerfile: Path, tmp_path: Path) -> None:
    pins = lock_pins(LOCK.read_text().splitlines())
    installed = lock_pins(_builder_requirements(dockerfile, tmp_path))
    if dockerfile.name == "Dockerfile.cuda":
        # onnxruntime-gpu in place of onnxruntime: the same module, the same dependencies
        assert installed.pop("onnxruntime-gpu") and pins.pop("onnxruntime")
    assert installed == pins
    # Every install takes no dependencies of its own, so nothing unpinned and no extra gets
    # in; `pip check` then fails the build if the lock misses one or leaves a range.
    runs = dockerfile_stages(dockerfile)[0].each("RUN")
    installs = [c.strip() for r in runs for c in r.split(" && ") if "pip install" in c]
    assert len(installs) == 2 and all("--no-deps" in c for c in installs)
    assert installs[-1].endswith(" .") and not any("[" in c for c in installs)
    assert "pip check" in runs[-1]


def test_runtime_dependencies_pull_in_no_torch() -> None:
    """The closure of pyproject's [project] dependencies, as installed in this venv."""
    import tomllib

    base = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    closure = runtime_closure(base)
    assert "onnxruntime" in closure and "fastapi" in closure
    assert not [d for d in closure if d in TORCH_LIKE or d.startswith("nvidia-")], closure


# --- .dockerignore -------------------------------------------------------------------------


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "runs/tagger/train.log",
        "cache/teacher.npz",
        "data/en_ewt-ud-train.conllu",
        "training/train.py",
        "models/some-other/model.onnx",
        "app/__pycache__/main.cpython-311.pyc",
        ".hypothesis/examples/x",
        ".pytest_cache/v/x",
        ".env",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert docker_ignored(path, _dockerignore())


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copied_file_is_in_the_build_context(dockerfile: Path) -> None:
    patterns = _dockerignore()
    copies = [c for s in dockerfile_stages(dockerfile) for c in s.each("COPY") if "--from" not in c]
    for copy in copies:
        *sources, _ = copy.split()
        for source in sources:
            path = ROOT / source
            files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
            probes = [p.relative_to(ROOT).as_posix() for p in files if "__pycache__" not in p.parts]
            if not path.exists():  # models/bigru-en before the model is trained and exported
                probes = [source.rstrip("/") + "/model.onnx"]
            assert probes
            assert not [p for p in probes if docker_ignored(p, patterns)], source


# --- docker-compose.yml --------------------------------------------------------------------


@pytest.mark.slow  # runs a linter in a subprocess
def test_compose_is_valid_against_the_compose_spec() -> None:
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_api_scales_behind_the_load_balancer() -> None:
    services = compose()["services"]
    api, lb = services["api"], services["lb"]
    # --scale api=N needs no fixed host port and no fixed container name.
    assert "ports" not in api and "container_name" not in api
    assert api["build"]["dockerfile"] == "Dockerfile"
    assert lb["build"]["context"] == "deploy/nginx" and "volumes" not in lb
    assert "api" in lb["depends_on"]
    for service in services.values():
        assert "command" not in service and "entrypoint" not in service  # the image's CMD
        assert service["restart"] == "unless-stopped"
        assert {"cpus", "memory"} <= set(service["deploy"]["resources"]["limits"])


@pytest.mark.parametrize("name", ["api", "api-gpu"])
def test_compose_api_service(name: str) -> None:
    service = compose()["services"][name]
    env = service["environment"]
    assert "/health" in " ".join(service["healthcheck"]["test"])
    # A model is swapped by pointing BIGRU_MODEL_DIR into the read-only mount; the default is
    # the model baked into the image.
    (mount,) = service["volumes"]
    assert mount["read_only"] is True and mount["target"] == "/models"
    image_env = dockerfile_stages(ROOT / service["build"]["dockerfile"])[-1].env()
    assert default_of(env["BIGRU_MODEL_DIR"]) == image_env["BIGRU_MODEL_DIR"]
    assert service["expose"] == [image_env["PORT"]]
    # compose sends SIGKILL after stop_grace_period: the drain has to fit in it.
    assert seconds(service["stop_grace_period"]) >= float(env["BIGRU_SHUTDOWN_TIMEOUT"]) + 5


def test_compose_gpu_profile_reserves_an_nvidia_device() -> None:
    gpu = compose()["services"]["api-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["dockerfile"] == "Dockerfile.cuda"
    assert gpu["environment"]["BIGRU_PROVIDERS"] == "cuda,cpu"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert "api" in gpu["networks"]["default"]["aliases"]  # lb's upstream name finds it too


# --- deploy/k8s ----------------------------------------------------------------------------


@pytest.mark.slow  # runs a linter in a subprocess
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_k8s_manifests_are_valid(version: str) -> None:
    done = subprocess.run(
        [
            tool("kubernetes-validate"),
            "--strict",
            *(["-k", version] if version != "newest" else []),
            *map(str, K8S),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} == set(k8s_objects())


def test_k8s_deployment() -> None:
    deployment = k8s_objects()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    image = dockerfile_stages(ROOT / "Dockerfile")[-1]

    assert "command" not in container and "args" not in container  # the image's CMD
    (port,) = container["ports"]
    assert str(port["containerPort"]) == env["PORT"] == image.env()["PORT"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": port["name"]}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])

    assert pod["securityContext"]["runAsNonRoot"] is True
    (user,) = image.each("USER")
    assert pod["securityContext"]["runAsUser"] == int(user.split(":")[0])
    assert container["securityContext"]["allowPrivilegeEscalation"] is False

    # preStop runs inside the grace period, then SIGTERM starts the drain; the kubelet kills
    # the pod when the period ends, so both must fit, with room for the batcher to stop.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = float(pre_stop[1]) + float(env["BIGRU_SHUTDOWN_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] >= drain + 5


def test_k8s_service_and_autoscaler_point_at_the_deployment() -> None:
    objects = k8s_objects()
    deployment, service, hpa = (
        objects["Deployment"],
        objects["Service"],
        objects["HorizontalPodAutoscaler"],
    )
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == container["ports"][0]["name"]

    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"  # a share of the container's CPU request
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
