"""`up` records the API socket of the engine the container is on, for KEEP_RUN_SPEC too:
that step names no engine, so the kept run spec's own engine is asked (a declined rebuild
and an `up` killed at `docker start` crashed with KeyError '' before)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from alcatraz.sandbox import spec, up
from alcatraz.sandbox.plan import Action, Step
from alcatraz.sandbox.up import UpRun
from alcatraz.statefile import RunSpec


def _fake_run(asked: list[str], previous: RunSpec | None) -> Any:
    return SimpleNamespace(
        runtimes={"Docker": SimpleNamespace(executable="docker"),
                  "Podman": SimpleNamespace(executable="podman")},
        project=SimpleNamespace(state=SimpleNamespace(run_spec=previous)),
        run_isolation=None,
        app=SimpleNamespace(environ={}),
        _api_socket=lambda executable: asked.append(executable) or "",
    )  # fmt: skip


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_keeping_the_run_spec_asks_its_own_engine(
    monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    saved: list[dict[str, object]] = []
    monkeypatch.setattr(up, "save_state", lambda _project, **fields: saved.append(fields))
    asked: list[str] = []
    previous = RunSpec(executable=engine, container="c", workdir="/w", project_root="/p")
    UpRun.do_keep_run_spec(_fake_run(asked, previous), Step(Action.KEEP_RUN_SPEC))
    assert asked == [engine]
    assert saved and saved[0]["run_spec"] == previous


def test_keeping_asks_nothing_without_a_run_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(up, "save_state", lambda _project, **fields: pytest.fail("saved"))
    asked: list[str] = []
    UpRun.do_keep_run_spec(_fake_run(asked, None), Step(Action.KEEP_RUN_SPEC))
    assert asked == []


def test_the_answering_socket_is_asked_for_the_executable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []
    monkeypatch.setattr(spec, "answering_api_socket", lambda exe, env: asked.append(exe) or "")
    run = SimpleNamespace(app=SimpleNamespace(environ={}))
    assert UpRun._api_socket(run, "podman") == ""  # type: ignore[arg-type]
    assert asked == ["podman"]
