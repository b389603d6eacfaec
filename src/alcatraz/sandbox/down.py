"""`alca down`: observe, plan (`alcatraz.sandbox.plan.plan_down`), carry the plan out.

A broken or unapproved configuration never keeps a sandbox alive: `down` removes what the
state file recorded, and only the approved configuration's `pre_down` hook runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from alcatraz.app import App
from alcatraz.config.load import Config
from alcatraz.errors import AlcaError
from alcatraz.runtime.base import ContainerInfo, Runtime
from alcatraz.sandbox import filesync, guard, project
from alcatraz.sandbox.plan import Action, DownObserved, Step, plan_down
from alcatraz.sandbox.project import Project, save_state

#: The steps shown as one progress line, "Stopping container...".
_STOPPING = frozenset(
    {Action.STOP_SYNC, Action.FORGET_CONFLICTS, Action.REMOVE_CONTAINER, Action.TEARDOWN}
)


def down(app: App, *, force: bool) -> None:
    """Remove the project's sandbox: sync, container, rules, network (state and approval stay)."""
    root = project.locate(app)
    down_at(app, root, lambda: project.load(app, root), force=force)


def down_at(app: App, root: Path, load: Callable[[], Config], *, force: bool) -> None:
    """`down` of the sandbox rooted at `root`, its configuration from `load` (a branch
    sandbox's is its project's, never one read from its copy)."""
    opened = project.open_project(app, root, allow_replaced=True)
    if opened.project_id is None:
        DownRun(app, None, opened).execute(plan_down(None, opened.state, _nothing()))
        return
    with opened.store.lock():
        opened = project.open_project(app, root, allow_replaced=True)
        config: Config | None
        try:
            config = load()
        except Exception:  # a broken config must not keep a sandbox alive
            config = None
        run = DownRun(app, config, opened)
        run.execute(plan_down(config, opened.state, run.observe(force=force)))


def _nothing() -> DownObserved:
    return DownObserved(engine="", container=False, approved=False, replaced=False)


class DownRun:
    """One `down`: what it observed, and one method per plan action."""

    def __init__(self, app: App, config: Config | None, opened: Project):
        self.app, self.config, self.project = app, config, opened
        self.project_id = str(opened.project_id)
        self.runtime: Runtime | None = None
        self.info: ContainerInfo | None = None
        self.force = False

    def observe(self, *, force: bool) -> DownObserved:
        """The engine the container was created on (else the configured one), and the container."""
        configured = self.config.runtime if self.config is not None else "auto"
        self.runtime = project.engine_for(self.app, configured, self.project.state)
        self.info = project.find_container(self.runtime, self.project)
        self.force = force
        approved = (
            self.config is not None
            and not self.project.replaced
            and project.is_approved(self.config, self.project)
        )
        return DownObserved(
            engine=self.runtime.name,
            container=self.info is not None,
            approved=approved,
            replaced=self.project.replaced,
            force=force,
        )

    def execute(self, steps: tuple[Step, ...]) -> None:
        with contextlib.ExitStack() as progress:
            stopping = False
            for step in steps:
                if (step.action in _STOPPING) != stopping:
                    progress.close()
                    stopping = not stopping
                    if stopping:
                        progress.enter_context(self.app.progress("Stopping container..."))
                method: Callable[[Step], None] = getattr(self, "do_" + step.action.name.lower())
                method(step)

    @property
    def engine(self) -> Runtime:
        if self.runtime is None:
            raise AlcaError("internal error: down planned a step before observing its engine")
        return self.runtime

    def do_nothing_to_do(self, step: Step) -> None:
        self.app.step("No state file found. Container may not exist.")

    def do_announce_engine(self, step: Step) -> None:
        self.app.step(f"Using runtime: {self.engine.name}")

    def do_skip_conflict_check(self, step: Step) -> None:
        self.app.warn(
            "--force used, skipping sync conflict check. Conflicts may become "
            "unresolvable after container is destroyed."
        )

    def do_check_conflicts(self, step: Step) -> None:
        """Removing the container would destroy its side of unresolved conflicts."""
        from alcatraz.sync.conflicts import banner

        conflicts, _ = filesync.poll_conflicts(
            self.app, self.engine, self.project_id, self.project.state_dir
        )
        if conflicts:
            self.app.err(banner(conflicts))
            raise AlcaError(
                "resolve sync conflicts before stopping the container, or use --force to skip "
                "this check: sync conflicts",
                hint="alca experimental sync resolve",
            )

    def do_hook(self, step: Step) -> None:
        if self.config is None or not self.config.pre_down:
            return
        code = project.run_hook(self.app, self.config, "pre_down", self.config.pre_down)
        if code != 0:
            self.app.step(f"Warning: pre_down hook failed with exit code {code}")

    def do_skip_hook(self, step: Step) -> None:
        self.app.warn("pre_down hook skipped: the configuration is not approved")

    def do_stop_sync(self, step: Step) -> None:
        filesync.stop(self.app, self.engine, self.project_id)

    def do_forget_conflicts(self, step: Step) -> None:
        filesync.forget_conflicts(self.project.state_dir)

    def do_remove_container(self, step: Step) -> None:
        if self.info is not None:
            self.engine.remove(self.info.name)

    def do_teardown(self, step: Step) -> None:
        """Only now that the container is gone: its rules, then its network."""
        record = self.project.state.isolation or guard.fallback_record(
            self.app, self.engine, self.project_id, self.project.state_dir
        )
        guard.teardown(self.app, self.engine, record)

    def do_forget_project(self, step: Step) -> None:
        project.forget(self.project)  # the old directory's sandbox is gone: start afresh
        self.app.step("This directory replaced the sandbox's original one: its state was cleared")

    def do_save_down(self, step: Step) -> None:
        save_state(self.project, setup_done=False, snapshot=None, isolation=None)

    def do_done_down(self, step: Step) -> None:
        self.app.done("Container stopped")
