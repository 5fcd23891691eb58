"""Dockerfiles read into stages, and the dev extra's linters that check the deploy files."""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent  # hadolint, check-jsonschema, kubernetes-validate (dev extra)


@dataclass
class Stage:
    name: str
    base: str
    steps: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def each(self, instruction: str) -> list[str]:
        return [args for ins, args in self.steps if ins == instruction]

    def env(self) -> dict[str, str]:
        pairs = (p.split("=", 1) for args in self.each("ENV") for p in shlex.split(args))
        return {k: v for k, v in pairs}


def dockerfile_stages(path: Path) -> list[Stage]:
    """The stages of a Dockerfile, continuation lines joined, comments dropped, ARGs applied."""
    lines, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    args: dict[str, str] = {}  # the ARGs declared before the first FROM
    for line in lines:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest).split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(name, words[0]))
        elif stages:
            stages[-1].steps.append((instruction, rest.strip()))
        elif instruction == "ARG":
            key, _, default = rest.partition("=")
            args[key] = default
    return stages


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is missing: it is in the dev extra (make dev)"
    return str(path)
