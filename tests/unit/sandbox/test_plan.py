"""The safety order of `up` and `down`, as properties of every plan `plan_up`/`plan_down` make.

Each situation `up` can meet (first up; a container running, stopped, on another engine,
drifted, off its network; force; every answer to the rebuild question) is planned from a
real configuration file, and every plan must keep the rules of `alcatraz.sandbox.plan`.
The integration tests drive the same executor on real engines.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from alcatraz.config.load import Config, load_config
from alcatraz.sandbox.plan import (
    PASSIVE,
    REFUSALS,
    Action,
    DownObserved,
    Step,
    UpObserved,
    needs_firewall,
    plan_down,
    plan_up,
)
from alcatraz.statefile import ProjectState, RunSpec

A = Action
CONFIGS = {
    "bind": 'image = "alpine:3.21"\n',
    "allow-all": 'image = "alpine:3.21"\n[network]\nlan-access = ["*"]\n',
    "sync+setup+hook": (
        'image = "alpine:3.21"\nworkdir_exclude = [".env"]\n'
        '[commands]\nup = "true"\n[hooks]\npost_up = "true"\npre_down = "true"\n'
    ),
}
FIRST = ProjectState()
KNOWN = ProjectState(
    project_id="p",
    container_name="alca-p",
    runtime="docker",
    setup_done=True,
    run_spec=RunSpec(executable="docker", container="alca-p", workdir="/w", project_root="/p"),
)


def config_of(tmp_path: Path, name: str) -> Config:
    root = tmp_path / name.replace("+", "_")
    root.mkdir()
    (root / ".alca.toml").write_text(CONFIGS[name], encoding="utf-8")
    return load_config(root, environ={}, cwd=root)


def actions(steps: tuple[Step, ...]) -> list[Action]:
    return [step.action for step in steps]


def situations() -> list[tuple[ProjectState, UpObserved]]:
    """Every combination of what `up` can observe and be told."""
    found = [(FIRST, UpObserved(engine="docker"))]
    for container, running, drift, detached, force, answer in itertools.product(
        ("docker", "podman"),
        (False, True),
        ((), ("Image: a → b",)),
        (False, True),
        (False, True),
        (None, False, True),
    ):
        observed = UpObserved(
            engine="docker",
            container_engine=container,
            running=running,
            drift=drift,
            detached=detached,
            force=force,
            rebuild=answer,
        )
        found.append((KNOWN, observed))
        found.append((KNOWN._replace(setup_done=False, run_spec=None), observed))
    found.append((KNOWN, UpObserved(engine="podman")))  # state known, container gone
    return found


@pytest.fixture(params=sorted(CONFIGS))
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    return config_of(tmp_path, request.param)


def every_up_plan(config: Config) -> list[tuple[UpObserved, list[Action], tuple[Step, ...]]]:
    plans = []
    for state, observed in situations():
        steps = plan_up(config, state, observed)
        plans.append((observed, actions(steps), steps))
    return plans


def test_refusals_come_before_anything_changes(config: Config) -> None:
    for observed, done, _ in every_up_plan(config):
        assert done[: len(REFUSALS)] == list(REFUSALS), observed
        assert not set(REFUSALS) & set(done[len(REFUSALS) :]), observed


def test_the_rules_are_loaded_before_any_container_runs(config: Config) -> None:
    for observed, done, _ in every_up_plan(config):
        starts = [i for i, a in enumerate(done) if a in (A.CREATE, A.START, A.ALREADY_RUNNING)]
        if A.ASK_REBUILD in done and observed.rebuild is None and not observed.force:
            assert not starts and done[-1] is A.ASK_REBUILD, observed
            continue
        if done[-1] is A.REFUSE_DETACHED:
            assert not starts and A.NETWORK not in done, observed
            continue
        assert len(starts) == 1, (observed, done)
        assert done.index(A.NETWORK) < done.index(A.RULES) < done.index(A.SAVE_ISOLATION)
        assert done.index(A.SAVE_ISOLATION) < starts[0], observed


def test_the_second_layer_comes_before_any_command_inside(config: Config) -> None:
    for observed, done, _ in every_up_plan(config):
        if A.INNER_LAYER not in done:
            continue
        guard = done.index(A.INNER_LAYER)
        for inside in (A.PREPARE_PATHS, A.SYNC, A.SETUP, A.SAVE_RUN_SPEC, A.KEEP_RUN_SPEC):
            if inside in done:
                assert done.index(inside) > guard, (observed, inside)
        assert guard > max(
            done.index(a) for a in (A.CREATE, A.START, A.ALREADY_RUNNING) if a in done
        )


def test_a_container_is_removed_before_its_rules_and_network(config: Config) -> None:
    for observed, done, steps in every_up_plan(config):
        if A.REMOVE_CONTAINER not in done:
            continue
        removed = done.index(A.REMOVE_CONTAINER)
        assert done.index(A.STOP_SYNC) < removed, observed
        assert removed < done.index(A.NETWORK), observed
        if A.TEARDOWN in done:  # the old engine's rules go, after its container
            assert removed < done.index(A.TEARDOWN), observed
            assert steps[done.index(A.TEARDOWN)].engine == observed.container_engine
            assert steps[done.index(A.NETWORK)].engine == observed.engine


def test_the_question_is_asked_before_anything_it_decides(config: Config) -> None:
    drifted = UpObserved(engine="docker", container_engine="docker", drift=("Image: a → b",))
    unanswered = plan_up(config, KNOWN, drifted)
    assert actions(unanswered)[-2:] == [A.SHOW_DRIFT, A.ASK_REBUILD]
    assert all(a in PASSIVE for a in actions(unanswered)[len(REFUSALS) :])
    for answer in (False, True):
        answered = plan_up(config, KNOWN, drifted._replace(rebuild=answer))
        assert answered[: len(unanswered)] == unanswered
    rebuilt = actions(plan_up(config, KNOWN, drifted._replace(rebuild=True)))
    assert A.REMOVE_CONTAINER in rebuilt and A.CREATE in rebuilt
    kept = actions(plan_up(config, KNOWN, drifted._replace(rebuild=False)))
    assert A.REMOVE_CONTAINER not in kept and A.CREATE not in kept
    assert A.KEEP_RUN_SPEC in kept and A.SETUP not in kept and A.SYNC not in kept


def test_force_rebuilds_without_asking(config: Config) -> None:
    forced = UpObserved(
        engine="docker", container_engine="docker", drift=("Image: a → b",), force=True
    )
    done = actions(plan_up(config, KNOWN, forced))
    assert A.ASK_REBUILD not in done
    assert done.index(A.REMOVE_CONTAINER) < done.index(A.CREATE)


def test_a_detached_container_is_never_kept_when_rules_are_needed(tmp_path: Path) -> None:
    declined = UpObserved(
        engine="docker",
        container_engine="docker",
        drift=("Network: …",),
        detached=True,
        rebuild=False,
    )
    for name in ("bind", "sync+setup+hook"):
        config = config_of(tmp_path, name)
        assert needs_firewall(config)
        assert actions(plan_up(config, KNOWN, declined))[-1] is A.REFUSE_DETACHED
    opted_out = config_of(tmp_path, "allow-all")  # lan-access = ["*"]: no rules to escape
    assert not needs_firewall(opted_out)
    assert A.KEEP_CONTAINER in actions(plan_up(opted_out, KNOWN, declined))


def test_the_first_up_records_its_identity_after_the_refusals(config: Config) -> None:
    done = actions(plan_up(config, FIRST, UpObserved(engine="docker")))
    assert done.index(A.SAVE_IDENTITY) == len(REFUSALS)
    assert done.count(A.SAVE_IDENTITY) == 1
    assert A.SAVE_IDENTITY not in actions(plan_up(config, KNOWN, UpObserved(engine="docker")))


def test_a_stopped_container_starts_only_with_its_sources_pinned(config: Config) -> None:
    stopped = UpObserved(engine="docker", container_engine="docker")
    done = actions(plan_up(config, KNOWN, stopped))
    assert done.index(A.CHECK_PINS) + 1 == done.index(A.START)


def test_hooks_run_after_the_lock_is_released(tmp_path: Path) -> None:
    config = config_of(tmp_path, "sync+setup+hook")
    done = actions(plan_up(config, FIRST, UpObserved(engine="docker")))
    assert done[-3:] == [A.RELEASE_LOCK, A.HOOK, A.DONE]
    assert done.index(A.SETUP) < done.index(A.SAVE_RUN_SPEC)
    assert A.POLL_CONFLICTS in done


def test_setup_runs_once_per_container(tmp_path: Path) -> None:
    config = config_of(tmp_path, "sync+setup+hook")
    running = UpObserved(engine="docker", container_engine="docker", running=True)
    assert A.SETUP not in actions(plan_up(config, KNOWN, running))
    pending = KNOWN._replace(setup_done=False)
    assert A.SETUP in actions(plan_up(config, pending, running))
    assert A.SETUP not in actions(plan_up(config_of(tmp_path, "bind"), FIRST, running))


DOWN = DownObserved(engine="docker", container=True, approved=True, replaced=False)


def test_down_removes_the_container_before_its_rules(tmp_path: Path) -> None:
    config = config_of(tmp_path, "sync+setup+hook")
    for container, approved, replaced, force in itertools.product((False, True), repeat=4):
        observed = DOWN._replace(
            container=container, approved=approved, replaced=replaced, force=force
        )
        done = actions(plan_down(config, KNOWN, observed))
        assert done.index(A.STOP_SYNC) < done.index(A.TEARDOWN)
        if container:
            assert done.index(A.REMOVE_CONTAINER) < done.index(A.TEARDOWN)
            check = A.SKIP_CONFLICT_CHECK if force else A.CHECK_CONFLICTS
            assert done.index(check) < done.index(A.STOP_SYNC)
        assert (A.HOOK in done) == approved and (A.SKIP_HOOK in done) != approved
        assert done[-2] is (A.FORGET_PROJECT if replaced else A.SAVE_DOWN)


def test_down_without_a_configuration_still_removes_everything() -> None:
    done = actions(plan_down(None, KNOWN, DOWN._replace(approved=False)))
    assert A.HOOK not in done and A.CHECK_CONFLICTS not in done
    assert done.index(A.REMOVE_CONTAINER) < done.index(A.TEARDOWN)


def test_down_without_state_does_nothing() -> None:
    assert actions(plan_down(None, FIRST, DOWN)) == [A.NOTHING_TO_DO]


def test_every_planned_action_has_an_executor_method(tmp_path: Path) -> None:
    from alcatraz.sandbox.down import DownRun
    from alcatraz.sandbox.up import UpRun

    planned_up: set[Action] = set()
    for name in CONFIGS:
        planned_up |= {a for _, done, _ in every_up_plan(config_of(tmp_path, name)) for a in done}
    (tmp_path / "down").mkdir()
    configs = (None, config_of(tmp_path / "down", "sync+setup+hook"))
    planned_down: set[Action] = set()
    for container, approved, replaced, force in itertools.product((False, True), repeat=4):
        observed = DOWN._replace(
            container=container, approved=approved, replaced=replaced, force=force
        )
        for config, state in itertools.product(configs, (FIRST, KNOWN)):
            planned_down |= set(actions(plan_down(config, state, observed)))
    assert planned_up | planned_down == set(Action)
    for action in planned_up:
        assert callable(getattr(UpRun, "do_" + action.name.lower(), None)), action
    for action in planned_down:
        assert callable(getattr(DownRun, "do_" + action.name.lower(), None)), action
