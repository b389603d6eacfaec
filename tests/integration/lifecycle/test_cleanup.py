"""`alca cleanup`: orphan containers are found with the right reason and removed as asked.

`cleanup` looks at every alcatraz container (and network) of the engine. Other projects on
this machine, other test runs included, look like orphans from this test's alcatraz home,
and `cleanup -y` would remove them. So these tests run the command in-process with a runner
through which the engine shows only this test's containers and networks; everything else,
including each removal, is the real engine.
"""

from __future__ import annotations

import re
import shutil

import pytest

from alcatraz import state
from tests.fakes import FakeTTY
from tests.integration.lifecycle.helpers import (
    Projects,
    config_text,
    inspect_container,
    networks_with_project_path,
    remove_container,
    run_cleanup,
)

pytestmark = pytest.mark.integration


def listed_orphans(output: str) -> dict[str, tuple[int, str]]:
    """name -> (number shown, reason), from the `Found N orphan container(s):` block."""
    found = re.findall(r"\[(\d+)\] (\S+)\n\s+Path: .*\n\s+Reason: (.*)", output)
    return {name: (int(number), reason) for number, name, reason in found}


def test_orphans_are_listed_and_removed_only_as_asked(projects: Projects) -> None:
    text = config_text(projects.engine)
    made = {name: projects.new(name, config=text) for name in ("gone", "nostate", "otherid", "ok")}
    for project in made.values():
        project.start()
    names = {key: project.container_name for key, project in made.items()}
    roots = [project.root for project in made.values()]

    shutil.rmtree(made["gone"].root)
    (made["nostate"].state_dir / "state.json").unlink()
    moved = made["otherid"].state()
    moved["project_id"] = "00000000-0000-4000-8000-000000000000"
    state.write_json(made["otherid"].state_dir / "state.json", moved)

    expected = {
        names["gone"]: "project directory does not exist",
        names["nostate"]: "state file does not exist",
        names["otherid"]: "project ID mismatch",
    }
    # No terminal and no -y: list, remove nothing.
    shown = run_cleanup(projects, roots, yes=False)
    assert "Found 3 orphan container(s):" in shown
    assert {n: r for n, (_, r) in listed_orphans(shown).items()} == expected
    assert "Nothing removed" in shown
    assert all(inspect_container(projects.engine, name) for name in names.values())

    # On a terminal: end of input cancels; a number removes just that one.
    cancelled = run_cleanup(projects, roots, yes=False, stdin=FakeTTY(""))
    assert "Cancelled." in cancelled
    assert all(inspect_container(projects.engine, name) for name in names.values())
    numbers = listed_orphans(cancelled)
    picked = names["nostate"]
    chosen = run_cleanup(projects, roots, yes=False, stdin=FakeTTY(f"{numbers[picked][0]}\n"))
    assert f"→ Removing {picked}... done" in chosen
    assert "✓ Removed 1 container(s)." in chosen
    assert inspect_container(projects.engine, picked) is None
    assert inspect_container(projects.engine, names["gone"]) is not None

    # -y removes every orphan left, and never the healthy sandbox.
    removed = run_cleanup(projects, roots, yes=True)
    assert "✓ Removed 2 container(s)." in removed
    for name in expected:
        assert inspect_container(projects.engine, name) is None
    assert made["ok"].container_running()
    assert run_cleanup(projects, roots, yes=False) == ""  # nothing left: silent
    for key in ("gone", "nostate", "otherid"):
        assert networks_with_project_path(projects.engine, made[key].root) == [], key
    assert networks_with_project_path(projects.engine, made["ok"].root) != []


def test_cleanup_without_yes_removes_no_network_either(projects: Projects) -> None:
    project = projects.new(config=config_text(projects.engine))
    project.start()
    remove_container(projects.engine, project.container_name)
    shutil.rmtree(project.root)  # its network is now an orphan, with no container
    run_cleanup(projects, [project.root], yes=False)
    assert networks_with_project_path(projects.engine, project.root) != []


def test_cleanup_spares_a_sandbox_of_another_alcatraz_home(projects: Projects) -> None:
    mine = projects.new("mine", config=config_text(projects.engine))
    mine.start()
    theirs = projects.new("theirs", config=config_text(projects.engine))
    theirs.home = projects.base / "other-user"
    theirs.home.mkdir()
    theirs.start()
    run_cleanup(projects, [mine.root, theirs.root], yes=True)
    assert mine.container_running()
    assert theirs.container_running()


def test_cleanup_looks_at_the_engine_the_project_uses(projects: Projects) -> None:
    if projects.engine != "docker":
        pytest.skip("auto-selection already picks Podman on Linux")
    project = projects.new(config=config_text(projects.engine))
    project.start()
    name = project.container_name
    (project.state_dir / "state.json").unlink()  # now an orphan
    shown = run_cleanup(projects, [project.root], yes=False, engine_choice="")
    assert name in listed_orphans(shown)
