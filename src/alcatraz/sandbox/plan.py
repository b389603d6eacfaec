"""The order of `alca up` and `alca down`, as pure plans: the safety argument in one place.

`plan_up(config, state, observed)` and `plan_down(...)` read what the configuration asks
for, what the state file remembers and what `up`/`down` observed on the engine, and return
the ordered steps; `alcatraz.sandbox.up` and `alcatraz.sandbox.down` carry them out and
nothing else decides an order. The rules (reference §1.3, §3.3), each a unit test on plans:

- every refusal comes before the first step that changes anything (state included);
- the network and its verified rules come before any container of the project is created
  or started, and the second layer is loaded before any command runs inside;
- a container is removed before its rules, its rules before its network;
- a question (rebuild on drift) is asked before anything it decides is done, and the
  steps before it do not depend on the answer.

Pure: no engine, no files, no `App`; the import contract keeps it so.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from alcatraz.config.load import Config
from alcatraz.statefile import ProjectState


class Action(Enum):
    """One kind of step; the executor has one method per member."""

    # Refusals: each checks a promise and stops `up` before anything changes.
    CHECK_ISOLATION = "refuse unless the host firewall can see the sandbox's traffic"
    CHECK_SYNC = "refuse unless excluded files can be hidden (Mutagen usable)"
    CHECK_SETUID = "refuse unless setuid files are kept off the host (guard profile)"
    CHECK_HOST_CA = "refuse unless the host's CA bundle can be copied (host-ca)"
    CHECK_PROTECTED = "refuse unless every path the host executes can be made read-only"
    CHECK_SOURCES = "refuse a workspace link among the mount sources"
    # Identity, drift and the question it raises.
    SAVE_IDENTITY = "record the project id, directory identity and container name"
    SHOW_DRIFT = "show how the configuration drifted from the container's"
    ASK_REBUILD = "ask whether to rebuild (answered before anything it decides)"
    REFUSE_DETACHED = "refuse to keep a container outside its isolated network"
    KEEP_CONTAINER = "keep the drifted container as it is"
    ANNOUNCE_ENGINE_CHANGE = "say that the engine changed"
    STOP_SYNC = "terminate the project's file sync sessions"
    REMOVE_CONTAINER = "remove the container"
    TEARDOWN = "remove the rules, then the network (the container is gone)"
    FORGET_BUILD = "record that no container is set up (setup again, no snapshot)"
    # The network, then the rules, before any container runs.
    NETWORK = "find or create the project network (the helper installed first)"
    RULES = "load and verify the rules, start the project's resolver"
    SAVE_ISOLATION = "record the isolation, so down can always undo it"
    # The container.
    ENSURE_SOURCES = "create missing mount sources beneath the project"
    PLACEHOLDERS = "create read-only placeholders for protected paths (bind mount)"
    SAVE_PINS = "record the identity of each workspace source"
    CREATE = "create and start the container"
    SAVE_CREATED = "record the container, its engine and its snapshot"
    ALREADY_RUNNING = "say the container is already running"
    CHECK_PINS = "refuse a workspace source replaced since create"
    START = "start the stopped container"
    INNER_LAYER = "load the second layer in the sandbox's own namespace"
    # Inside the running sandbox.
    KEEP_RUN_SPEC = "keep the old run-spec with the live isolation (drift kept)"
    PREPARE_PATHS = "create the synced mounts' parent directories inside"
    SYNC = "start file sync and wait for the first flush"
    POLL_CONFLICTS = "record sync conflicts"
    SETUP = "run commands.up once per container"
    SAVE_RUN_SPEC = "record what alca run needs"
    RELEASE_LOCK = "let other alca commands at the project"
    HOOK = "run a host hook"
    DONE = "say the environment is ready"
    # down only.
    NOTHING_TO_DO = "say there is no sandbox"
    ANNOUNCE_ENGINE = "say which engine is used"
    CHECK_CONFLICTS = "refuse while sync conflicts are unresolved"
    SKIP_CONFLICT_CHECK = "warn that --force skips the conflict check"
    SKIP_HOOK = "warn that an unapproved hook was skipped"
    FORGET_CONFLICTS = "drop the cached conflicts (they went with the container)"
    FORGET_PROJECT = "clear the state of a replaced directory"
    SAVE_DOWN = "record that no container is set up"
    DONE_DOWN = "say the container is stopped"


#: Steps that only check, say or ask: nothing on the system or in the state changes.
PASSIVE: frozenset[Action] = frozenset(
    {
        Action.CHECK_ISOLATION,
        Action.CHECK_SYNC,
        Action.CHECK_PROTECTED,
        Action.CHECK_SOURCES,
        Action.SHOW_DRIFT,
        Action.ASK_REBUILD,
        Action.REFUSE_DETACHED,
        Action.KEEP_CONTAINER,
        Action.ANNOUNCE_ENGINE_CHANGE,
        Action.ALREADY_RUNNING,
        Action.CHECK_PINS,
        Action.DONE,
        Action.NOTHING_TO_DO,
        Action.ANNOUNCE_ENGINE,
        Action.CHECK_CONFLICTS,
        Action.SKIP_CONFLICT_CHECK,
        Action.SKIP_HOOK,
        Action.DONE_DOWN,
    }
)
#: The refusals of `up`, in the order they are checked.
REFUSALS: tuple[Action, ...] = (
    Action.CHECK_ISOLATION,
    Action.CHECK_SYNC,
    Action.CHECK_SETUID,
    Action.CHECK_HOST_CA,
    Action.CHECK_PROTECTED,
    Action.CHECK_SOURCES,
)


class Step(NamedTuple):
    """One step: what, on which engine ("" when none), with what (hook name, drift lines)."""

    action: Action
    engine: str = ""
    detail: tuple[str, ...] = ()


class UpObserved(NamedTuple):
    """What `up` found before planning, and what the user decided."""

    engine: str  # the engine the configuration chooses now
    container_engine: str = ""  # where the project's container is ("" when there is none)
    running: bool = False
    drift: tuple[str, ...] = ()  # display lines; empty when the container is current
    detached: bool = False  # the container is not on its isolated project network
    force: bool = False  # `up -f`: rebuild on drift without asking
    rebuild: bool | None = None  # the answer to ASK_REBUILD (None: not asked yet)


def needs_firewall(config: Config) -> bool:
    """The policy needs rules: anything but `lan-access = ["*"]` without a proxy."""
    return not config.allow_all_lan or config.proxy is not None


def plan_up(config: Config, state: ProjectState, observed: UpObserved) -> tuple[Step, ...]:
    """Every step of `up`, in order (see the module docstring for the rules it keeps)."""
    steps = [Step(action) for action in REFUSALS]
    if state.project_id is None:
        steps.append(Step(Action.SAVE_IDENTITY))
    container = observed.container_engine
    kept = False
    if container and observed.drift:
        reconciled, container = _reconcile(observed, keep_detached=not needs_firewall(config))
        steps += reconciled
        if steps[-1].action in (Action.ASK_REBUILD, Action.REFUSE_DETACHED):
            return tuple(steps)  # the answer is needed first, or nothing may be done
        kept = steps[-1].action is Action.KEEP_CONTAINER
    engine = container or observed.engine
    steps += [Step(Action.NETWORK, engine), Step(Action.RULES, engine), Step(Action.SAVE_ISOLATION)]
    steps += _container_steps(config, engine, exists=bool(container), running=observed.running)
    steps.append(Step(Action.INNER_LAYER, engine))
    if kept and state.run_spec is not None:
        # Built from the old configuration: keep running it as such (its workdir, mounts,
        # setup); only the live network policy is updated.
        steps.append(Step(Action.KEEP_RUN_SPEC))
    else:
        fresh = not container  # created now: its setup has not run
        steps += _inside_steps(
            config, engine, setup=config.up is not None and (fresh or not state.setup_done)
        )
    steps.append(Step(Action.RELEASE_LOCK))
    if config.post_up:
        steps.append(Step(Action.HOOK, detail=("post_up",)))
    steps.append(Step(Action.DONE))
    return tuple(steps)


def _reconcile(observed: UpObserved, *, keep_detached: bool) -> tuple[list[Step], str]:
    """The drift steps, and the engine whose container remains ("" once it is removed)."""
    old = observed.container_engine
    steps = [Step(Action.SHOW_DRIFT, detail=observed.drift)]
    if not observed.force:
        steps.append(Step(Action.ASK_REBUILD))
        if observed.rebuild is None:
            return steps, old
        if not observed.rebuild:
            if observed.detached and not keep_detached:
                return [*steps, Step(Action.REFUSE_DETACHED)], old
            return [*steps, Step(Action.KEEP_CONTAINER)], old
    if old != observed.engine:
        steps.append(Step(Action.ANNOUNCE_ENGINE_CHANGE, old))
    steps += [Step(Action.STOP_SYNC, old), Step(Action.REMOVE_CONTAINER, old)]
    if old != observed.engine:
        steps.append(Step(Action.TEARDOWN, old))  # the old engine's network and rules go too
    steps.append(Step(Action.FORGET_BUILD))
    return steps, ""


def _container_steps(config: Config, engine: str, *, exists: bool, running: bool) -> list[Step]:
    if not exists:
        steps = [Step(Action.ENSURE_SOURCES)]
        if not config.workdir_exclude:  # bind-mounted: the mount points are host paths
            steps.append(Step(Action.PLACEHOLDERS))
        return [
            *steps,
            Step(Action.SAVE_PINS),
            Step(Action.CREATE, engine),
            Step(Action.SAVE_CREATED, engine),
        ]
    if running:
        return [Step(Action.ALREADY_RUNNING, engine)]
    # The engine resolves the mount sources again on start: they must be the pinned ones.
    return [Step(Action.CHECK_PINS), Step(Action.START, engine)]


def _inside_steps(config: Config, engine: str, *, setup: bool) -> list[Step]:
    steps = [Step(Action.PREPARE_PATHS, engine), Step(Action.SYNC, engine)]
    if needs_sync(config):
        steps.append(Step(Action.POLL_CONFLICTS, engine))
    if setup:
        steps.append(Step(Action.SETUP, engine))
    steps.append(Step(Action.SAVE_RUN_SPEC, engine))
    return steps


class DownObserved(NamedTuple):
    """What `down` found before planning."""

    engine: str  # the engine that owns the sandbox
    container: bool  # the project's container exists there
    approved: bool  # the configuration is approved and the directory is the original
    replaced: bool  # the directory replaced the sandbox's original one
    force: bool = False  # `down --force`: skip the conflict check


def plan_down(
    config: Config | None, state: ProjectState, observed: DownObserved
) -> tuple[Step, ...]:
    """Every step of `down`: container, then its rules, then its network."""
    if state.project_id is None:
        return (Step(Action.NOTHING_TO_DO),)
    engine = observed.engine
    steps = [Step(Action.ANNOUNCE_ENGINE, engine)]
    if observed.container and config is not None and needs_sync(config):
        conflicts = Action.SKIP_CONFLICT_CHECK if observed.force else Action.CHECK_CONFLICTS
        steps.append(Step(conflicts, engine))
    if config is not None and config.pre_down:
        hook = Action.HOOK if observed.approved else Action.SKIP_HOOK
        steps.append(Step(hook, detail=("pre_down",)))
    steps += [Step(Action.STOP_SYNC, engine), Step(Action.FORGET_CONFLICTS)]
    if observed.container:
        steps.append(Step(Action.REMOVE_CONTAINER, engine))
    steps.append(Step(Action.TEARDOWN, engine))
    steps.append(Step(Action.FORGET_PROJECT if observed.replaced else Action.SAVE_DOWN))
    steps.append(Step(Action.DONE_DOWN))
    return tuple(steps)


def needs_sync(config: Config) -> bool:
    """Some mount hides files (exclude patterns), so it is synced rather than bind-mounted."""
    return any(mount.exclude for mount in config.all_mounts)
