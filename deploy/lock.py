"""Writes requirements.lock: pyproject's runtime dependencies resolved to exact versions.

`make lock` runs it. pip resolves the [project] dependencies for this interpreter (CPython 3.11
on Linux, the images' platform) without installing anything, and every distribution it would
install is written as `name==version`. The Dockerfiles install exactly that list with --no-deps,
then `pip check` holds it to pyproject's ranges; tests/test_deploy.py checks the same offline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
HEADER = """\
# The runtime dependencies of the images, pinned: pyproject.toml's [project] dependencies and
# everything they pull in, resolved for CPython 3.11 on Linux. Written by `make lock`; the
# Dockerfiles install exactly these (--no-deps), and tests/test_deploy.py checks them against
# pyproject's ranges.
"""


def resolve(requirements: list[str]) -> dict[str, str]:
    """{name: version} of what pip would install for `requirements` into an empty venv."""
    with tempfile.TemporaryDirectory() as tmp:
        listed, report = Path(tmp) / "requirements.txt", Path(tmp) / "report.json"
        listed.write_text("\n".join(requirements) + "\n")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--dry-run",
                "--ignore-installed",
                "--report",
                str(report),
                "-r",
                str(listed),
            ],
            check=True,
        )
        installs = json.loads(report.read_text())["install"]
    return {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in installs}


def main() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = resolve(pyproject["project"]["dependencies"])
    LOCK.write_text(HEADER + "".join(f"{name}=={pins[name]}\n" for name in sorted(pins)))
    print(f"{LOCK.name}: {len(pins)} distributions")


if __name__ == "__main__":
    main()
