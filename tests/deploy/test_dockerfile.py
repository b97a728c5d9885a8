"""The Dockerfile, without a Docker engine: the package builds from exactly the files it
copies, and its CMD and HEALTHCHECK run as written against a real node process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import redis

from distcache_core.plugins import DEFAULT_PLUGINS
from tests.conftest import free_port, run_cli
from tests.deploy.deployfiles import REPO, Dockerfile, runnable


def build_context(dockerfile: Dockerfile, into: Path) -> Path:
    """What the image's COPY lines put in its working directory, as Docker copies: a folder's
    contents into the destination, files into a destination ending in ``/``."""
    root = into / "workdir"
    for sources, destination in dockerfile.copies:
        if destination.startswith("/"):
            continue  # outside the working directory: config files, used by runnable()
        target = root / destination
        for source in sources:
            origin = REPO / source
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                into_folder = destination.endswith("/") or len(sources) > 1
                path = target / origin.name if into_folder else target
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(origin, path)
    return root


def test_the_package_builds_from_the_copied_files_alone(tmp_path):
    dockerfile = Dockerfile()
    assert any(args.startswith("pip install . ") for args in dockerfile.all("RUN"))
    context = build_context(dockerfile, tmp_path)
    # pip install . builds this same wheel first (in an isolated build environment).
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
         str(context)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    [wheel] = (tmp_path / "dist").glob("distcache-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(
            next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for module in DEFAULT_PLUGINS:  # a package or a single module
        path = module.replace(".", "/")
        assert f"{path}/__init__.py" in names or f"{path}.py" in names, module
    assert "distcache = distcache_core.cli:main" in entry_points


def test_cmd_serves_and_the_healthcheck_passes(node_process, tmp_path):
    dockerfile = Dockerfile()
    command = runnable(dockerfile.cmd, dockerfile)
    assert command[0] == "serve"
    # The only changes: free ports and a temporary folder for the volume.
    dashboard = free_port()
    args = (*command[1:], "--port", "0", "--data-dir", str(tmp_path),
            "--set", f"plugins.dashboard.port={dashboard}")
    env = {**dockerfile.env, "NODE_ID": "node-1"}
    proc = node_process(*args, env=env)
    # The image's config turns persistence on: the node says it is loading, then ready.
    assert "node node-1 loading its data from" in proc.banner
    assert "node node-1 listening on 0.0.0.0:" in proc.proc.stdout.readline()
    health = runnable(dockerfile.healthcheck, dockerfile)
    assert health[:3] == ["health", "--port", "8080"]  # the dashboard's /health
    result = run_cli(*health[:2], str(dashboard), *health[3:])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "serving", "node": "node-1"}
    with redis.Redis(port=proc.port) as client:
        client.set("warm", "kept")
    proc.proc.terminate()
    assert proc.proc.wait(10) == 0  # docker stop sends SIGTERM: a clean exit
    result = run_cli(*health[:2], str(dashboard), *health[3:])
    assert result.returncode == 1  # the health check notices a node that is gone
    assert "no answer from" in result.stderr
    # `docker compose down` and `up` with the same volume: the container comes back warm.
    again = node_process(*args, env=env)
    assert "listening on" in again.proc.stdout.readline()
    with redis.Redis(port=again.port) as client:
        assert client.get("warm") == b"kept"


def test_the_build_context_leaves_out_what_the_image_does_not_need():
    ignored = (REPO / ".dockerignore").read_text().split()
    for heavy in (".git", ".venv", "tests", "asv_bench"):
        assert heavy in ignored
    copied = {source for sources, _ in Dockerfile().copies for source in sources}
    for source in copied:
        assert (REPO / source).exists(), source
        assert not any(source == entry or source.startswith(entry + "/") for entry in ignored)
