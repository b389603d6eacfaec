"""`alca net allow` against a workspace the agent attacked (issue 15, hostile workspace).

`net allow` is the one command besides `init` that writes into the project. From inside a
running sandbox the agent tries to turn `.alca.toml` into a link to a host file, and to
plant links and FIFOs beside it; then the user runs `alca net allow` on the host. Nothing
outside the project is read or written, `.alca.toml` is never replaced through a link,
and the command never blocks. Docker and Podman, each with a bind-mounted and a synced
workspace.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import pytest

from tests.integration.conftest import engine_problem
from tests.integration.lifecycle.helpers import engine_cli
from tests.integration.sync_helpers import WORKSPACE_MODES, SyncWorkspace, config

pytestmark = pytest.mark.integration

#: What the agent runs inside: replace the config with a link to the host file (the
#: protected bind should refuse), and plant a link, a FIFO and a linked directory next to it.
ATTACK = r"""
rm -f /workspace/.alca.toml 2>/dev/null
ln -sf "$1" /workspace/.alca.toml 2>/dev/null
ln -sf "$1" /workspace/.alca.toml.tmp
mkfifo /workspace/.alca.fifo.toml
ln -sfn "$(dirname "$1")" /workspace/conf
exit 0
"""


@pytest.fixture(params=WORKSPACE_MODES)
def workspace(request: pytest.FixtureRequest) -> Iterator[tuple[SyncWorkspace, str]]:
    engine, mode = request.param
    problem = engine_problem(engine)
    if problem:
        pytest.skip(problem)
    ws = SyncWorkspace(engine)
    try:
        yield ws, mode
    finally:
        ws.cleanup()


def test_net_allow_reads_and_writes_nothing_outside_the_project(
    workspace: tuple[SyncWorkspace, str],
) -> None:
    ws, mode = workspace
    text = config(ws.engine, exclude='["**/.env"]' if mode == "sync" else "")
    project = ws.project("allow", text)
    host = ws.base / "host" / "secret.toml"
    host.parent.mkdir()
    host.write_text("secret = 1\n")
    project.ok("trust", "--yes")
    project.ok("up")
    inside = ["exec", project.container, "sh", "-c", ATTACK, "sh", str(host)]
    done = engine_cli(ws.engine, *inside)
    assert done.returncode == 0, done.stderr
    if mode == "sync":
        project.flush()

    outcome = project.alca("net", "allow", "pypi.org", "-y", timeout=30)
    # Refused either way: the config is still the project's (this config sets no egress:
    # the internet is open), or the agent made it a link (refused before it is read).
    assert outcome.returncode == 77, str(outcome)
    assert host.read_text() == "secret = 1\n"
    assert sorted(os.listdir(host.parent)) == ["secret.toml"]
    info = os.lstat(project.root / ".alca.toml")
    planted = sorted(p.name for p in project.root.iterdir())
    kind = "a file" if stat.S_ISREG(info.st_mode) else "a link"
    print(f"\n[{ws.engine}-{mode}] after the attack .alca.toml is {kind}; project: {planted}")
    if stat.S_ISREG(info.st_mode):
        assert (project.root / ".alca.toml").read_text() == text
        assert "the internet is open" in outcome.stderr, str(outcome)
    else:
        assert "is a symbolic link; nothing was read or written" in outcome.stderr

    # The user's own copy turned into a link on the host (as if the agent had won): the
    # same command refuses before reading, and writes nothing through it.
    os.replace(project.root / ".alca.toml", project.root / "saved.toml")
    os.symlink(host, project.root / ".alca.toml")
    outcome = project.alca("net", "allow", "pypi.org", "-y", timeout=30)
    assert outcome.returncode == 77, str(outcome)
    assert "./.alca.toml is a symbolic link" in outcome.stderr, str(outcome)
    assert host.read_text() == "secret = 1\n"
    os.unlink(project.root / ".alca.toml")
    os.replace(project.root / "saved.toml", project.root / ".alca.toml")
    project.ok("down", "--force")
