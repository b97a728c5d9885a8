"""Reading the deployment files as Docker, docker compose and Kubernetes would, for the tests:
the Dockerfile's instructions, compose's variable interpolation, the manifests' documents."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE_FILE = REPO / "docker-compose.yml"
KUBERNETES_DIR = REPO / "deploy" / "kubernetes"
COMPOSE_SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, comments dropped and continued lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, arguments = text.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def exec_form(arguments: str) -> list[str]:
    """A JSON-array (exec form) argument list; shell form is refused (no shell in tests)."""
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


class Dockerfile:
    def __init__(self, path: Path = DOCKERFILE) -> None:
        self.instructions = dockerfile_instructions(path)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def one(self, keyword: str) -> str:
        found = self.all(keyword)
        assert len(found) == 1, (keyword, found)
        return found[0]

    @property
    def cmd(self) -> list[str]:
        return exec_form(self.one("CMD"))

    @property
    def healthcheck(self) -> list[str]:
        text = self.one("HEALTHCHECK")
        options, _, command = text.partition("CMD ")
        return exec_form(command)

    @property
    def copies(self) -> list[tuple[list[str], str]]:
        """(sources, destination) of every COPY."""
        out = []
        for args in self.all("COPY"):
            parts = shlex.split(args)
            assert not any(p.startswith("--") for p in parts), args
            out.append((parts[:-1], parts[-1]))
        return out

    @property
    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for args in self.all("ENV"):
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
        return env


_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(value: Any, environ: dict[str, str]) -> Any:
    """Compose's ``${VAR}`` / ``${VAR:-default}`` substitution, through nested values."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: environ.get(m.group(1)) or (m.group(2) or ""), value)
    if isinstance(value, list):
        return [interpolate(v, environ) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, environ) for k, v in value.items()}
    return value


def load_compose(environ: dict[str, str] | None = None) -> dict[str, Any]:
    return interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), environ or {})


def load_manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(KUBERNETES_DIR.glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def copied_files(dockerfile: Dockerfile) -> dict[str, Path]:
    """Path inside the image -> repository file, for every single-file COPY to a full path."""
    return {destination: REPO / sources[0] for sources, destination in dockerfile.copies
            if len(sources) == 1 and destination.startswith("/")}


def runnable(command: list[str], dockerfile: Dockerfile) -> list[str]:
    """The arguments of a ``distcache ...`` command of the image, with files the Dockerfile
    copied into the image replaced by their repository originals."""
    assert command[0] == "distcache", command
    files = copied_files(dockerfile)
    return [str(files[arg]) if arg in files else arg for arg in command[1:]]
