"""The repository installs as a tool with `uv tool install` and with `pipx install`.

Each installer gets its own temporary home, tool and bin directories, so nothing outside
the test's directory is touched. It installs a copy of the repository's files (those git
tracks, plus new ones it does not ignore), building the wheel from scratch: a file missing
from the package or broken metadata fails here. Dependencies come from PyPI.

uv and pipx are in the `dev` extra. Missing, they skip these tests, except under CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

import alcatraz

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT = 240  # the first install downloads build backends and dependencies


def _tool(name: str) -> str:
    """The installer next to this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        message = f"{name} is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{message}; CI is set, so this is a failure, not a skip")
        pytest.skip(message)
    return found


def _repository_files() -> list[str]:
    """Files of the checkout that git tracks or would track (never .venv, caches, builds)."""
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: cannot tell the repository's files from local ones")
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    names = [n for n in listed.decode("utf-8", "surrogateescape").split("\0") if n]
    return [n for n in names if (REPO / n).is_file()]  # deleted but still in the index


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository, so concurrent edits and local files cannot leak in."""
    target = tmp_path_factory.mktemp("source") / "alcatraz"
    for name in _repository_files():
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, destination)
    assert (target / "pyproject.toml").is_file()
    return target


#: Variables that would point an installer at another environment or tool directory.
_ENV_DROPPED = ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")
_ENV_PREFIXES_DROPPED = ("PIPX_", "UV_TOOL_", "UV_PYTHON", "XDG_")
_PIP_DROPPED = ("PIP_USER", "PIP_TARGET", "PIP_PREFIX", "PIP_REQUIRE_VIRTUALENV")


def _clean_env(home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """This environment (index URLs, certificates and proxies kept), with a private home."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _ENV_DROPPED
        and key not in _PIP_DROPPED
        and not key.startswith(_ENV_PREFIXES_DROPPED)
    }
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        ALCA_HOME=str(home / ".alcatraz"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def _run(argv: list[str], env: Mapping[str, str], timeout: float) -> str:
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, (
        f"{' '.join(argv)} exited {done.returncode}\n"
        f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    )
    return done.stdout


_METADATA_PROBE = """
import json, alcatraz
from importlib import metadata
m = metadata.metadata("alcatraz")
print(json.dumps({
    "file": alcatraz.__file__,
    "version": m["Version"],
    "summary": m["Summary"],
    "license": m.get("License-Expression") or m.get("License"),
    "requires_python": m["Requires-Python"],
    "has_readme": bool(m.get_payload()),
    "files": [str(f) for f in metadata.files("alcatraz") or ()],
}))
"""


def _check_installed(alca: Path, python: Path, tool_dir: Path, env: Mapping[str, str]) -> None:
    assert alca.is_file(), f"{alca} was not created"
    version = _run([str(alca), "--version"], env, 60)
    assert version.strip() == f"alca version {alcatraz.__version__}"
    helptext = _run([str(alca), "--help"], env, 60)
    for word in ("init", "up", "run", "down", "status", "completion"):
        assert word in helptext
    # Package data (templates, agent presets) made it into the wheel.
    completion = _run([str(alca), "completion", "bash"], env, 60)
    assert "debian-slim" in completion and "claude" in completion
    # A real copy in the tool's own environment (not an editable link to the checkout),
    # with complete metadata.
    info = json.loads(_run([str(python), "-c", _METADATA_PROBE], env, 60))
    assert Path(info["file"]).resolve().is_relative_to(tool_dir.resolve()), info["file"]
    assert info["version"] == alcatraz.__version__
    assert info["summary"] and info["has_readme"]
    assert info["license"] == "MIT"
    assert info["requires_python"] == ">=3.11"
    assert any(f.endswith("LICENSE") for f in info["files"])
    assert any(f.endswith("presets/claude.toml") for f in info["files"])


def test_uv_tool_install(source: Path, tmp_path: Path) -> None:
    uv = _tool("uv")
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = tmp_path / "bin"
    env = _clean_env(
        home,
        {
            "UV_TOOL_DIR": str(tmp_path / "tools"),
            "UV_TOOL_BIN_DIR": str(bin_dir),
            "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
            "UV_PYTHON": sys.executable,  # this interpreter: never download one
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_CONFIG": "1",
        },
    )
    _run([uv, "tool", "install", "--compile-bytecode", str(source)], env, INSTALL_TIMEOUT)
    tools = tmp_path / "tools"
    _check_installed(bin_dir / "alca", tools / "alcatraz" / "bin" / "python", tools, env)
    listing = _run([uv, "tool", "list"], env, 60)
    assert f"alcatraz v{alcatraz.__version__}" in listing


def test_pipx_install(source: Path, tmp_path: Path) -> None:
    pipx = _tool("pipx")
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = tmp_path / "bin"
    env = _clean_env(
        home,
        {
            "PIPX_HOME": str(tmp_path / "pipx"),
            "PIPX_BIN_DIR": str(bin_dir),
            "PIPX_MAN_DIR": str(tmp_path / "man"),
            "PIPX_DEFAULT_PYTHON": sys.executable,
        },
    )
    _run([pipx, "install", str(source)], env, INSTALL_TIMEOUT)
    venvs = tmp_path / "pipx" / "venvs"
    _check_installed(bin_dir / "alca", venvs / "alcatraz" / "bin" / "python", venvs, env)
    listing = _run([pipx, "list", "--short"], env, 60)
    assert f"alcatraz {alcatraz.__version__}" in listing
