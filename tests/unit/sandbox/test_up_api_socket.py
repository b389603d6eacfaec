"""`up` records the API socket of the engine the container is on, for KEEP_RUN_SPEC too
(the step names no engine: found by the kill-at-every-step fault test)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from alcatraz.sandbox import spec
from alcatraz.sandbox.plan import Action, Step, UpObserved
from alcatraz.sandbox.up import UpRun


@pytest.mark.parametrize(
    ("step", "observed", "expected"),
    [
        (Step(Action.KEEP_RUN_SPEC), UpObserved("Docker", "Podman"), "podman"),
        (Step(Action.KEEP_RUN_SPEC), UpObserved("Docker"), "docker"),
        (Step(Action.SAVE_RUN_SPEC, "Podman"), UpObserved("Docker", "Docker"), "podman"),
    ],
)
def test_the_socket_is_the_containers_engines(
    monkeypatch: pytest.MonkeyPatch, step: Step, observed: UpObserved, expected: str
) -> None:
    asked: list[str] = []
    monkeypatch.setattr(spec, "answering_api_socket", lambda exe, env: asked.append(exe) or "")
    run = SimpleNamespace(
        runtimes={"Docker": SimpleNamespace(executable="docker"),
                  "Podman": SimpleNamespace(executable="podman")},
        observed=observed,
        app=SimpleNamespace(environ={}),
    )  # fmt: skip
    assert UpRun._api_socket(run, step) == ""  # type: ignore[arg-type]
    assert asked == [expected]
