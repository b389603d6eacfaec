"""`alca up`: approve, observe, plan (`alcatraz.sandbox.plan.plan_up`), carry the plan out.

Approval comes first and outside the plan: the plan is made from the configuration, and an
unapproved configuration (the agent may have written it) is no input to act on, nor to
choose which engine to ask. Everything after it, from the first refusal to the hook, is a
step of the plan; this module decides no order of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from alcatraz import protect, sources, state
from alcatraz.app import App
from alcatraz.config.load import Config
from alcatraz.errors import AlcaError, RefusedError
from alcatraz.network import resolver
from alcatraz.network.plan import network_name
from alcatraz.printable import printable
from alcatraz.runtime.base import ContainerInfo, ContainerState, Runtime
from alcatraz.sandbox import drift, filesync, guard, project, spec
from alcatraz.sandbox.plan import Action, Step, UpObserved, plan_up
from alcatraz.sandbox.project import Project, save_state
from alcatraz.statefile import IsolationRecord


def up(app: App, *, force: bool, assume_yes: bool) -> None:
    """Create, start, reuse or rebuild the project's sandbox, then run `post_up`."""
    root = project.locate(app)
    config = project.load(app, root)
    opened = project.open_project(app, root)
    with contextlib.ExitStack() as lock:
        lock.enter_context(opened.store.lock())
        opened = project.open_project(app, root)  # re-read under the lock
        project.require_approval(app, config, opened, assume_yes=assume_yes)
        run = UpRun(app, config, opened, lock)
        run.execute(run.observe(force=force))


def up_approved(app: App, config: Config, root: Path, *, force: bool) -> None:
    """`up` of the sandbox rooted at `root` with a configuration approved elsewhere (a branch
    sandbox's copy runs on its project's configuration, never on one read from the copy)."""
    with contextlib.ExitStack() as lock:
        lock.enter_context(project.open_project(app, root).store.lock())
        run = UpRun(app, config, project.open_project(app, root), lock)
        run.execute(run.observe(force=force))


class UpRun:
    """One `up`: what it observed and made so far, and one method per plan action."""

    def __init__(self, app: App, config: Config, opened: Project, lock: contextlib.ExitStack):
        self.app, self.config, self.project, self.lock = app, config, opened, lock
        self.project_id = opened.project_id or project.new_project_id()
        self.name = state.container_name_for(self.project_id)
        self.runtimes: dict[str, Runtime] = {}
        self.info: ContainerInfo | None = None  # the container as found before any step
        self.setuid_profile: str | None = None
        self.ca_bundle: Path | None = None
        self.protection: list[protect.Placement] = []
        self.network: guard.Network | None = None
        self.isolation: guard.Isolation | None = None
        self.run_isolation: IsolationRecord | None = None
        self.observed = UpObserved(engine="")

    def observe(self, *, force: bool) -> UpObserved:
        """Which engine, which container where, how it drifted: reads only."""
        self.app.step("Detecting runtime...")
        chosen = project.engine_for(self.app, self.config.runtime)
        self.app.step(f"Detected runtime: {chosen.name}")
        self.runtimes[chosen.name] = chosen
        # By the name this `up` uses, recorded or not: a first `up` asks too, so every `up`
        # runs the same engine commands in the same order (the fault tests kill at the Nth).
        self.info = project.find_container(chosen, self.project, self.name)
        found_on = chosen
        previous = project.previous_runtime(self.app, self.project, chosen)
        if self.info is None and previous is not None:
            # The engine changed (upstream B2): the old container is drift, not an orphan.
            self.info = project.find_container(previous, self.project, self.name)
            if self.info is not None:
                found_on = self.runtimes[previous.name] = previous
        if self.info is None:
            return UpObserved(engine=chosen.name, force=force)
        detached = network_name(self.project_id) not in self.info.networks
        return UpObserved(
            engine=chosen.name,
            container_engine=found_on.name,
            running=self.info.state is ContainerState.RUNNING,
            drift=tuple(self._drift(self.info, chosen, detached)),
            detached=detached,
            force=force,
        )

    def _drift(self, info: ContainerInfo, chosen: Runtime, detached: bool) -> list[str]:
        """How the container differs from what this configuration would build."""
        lines = drift.compare(
            self.project.state.snapshot or {},
            self.snapshot,
            old_engine=self.project.state.runtime,
            new_engine=chosen.name,
        )
        if detached:
            lines.append("Network: the container is not on its isolated project network")
        elif not info.dns and resolver.expected(self.config):
            lines.append("Names: the container does not use the project's resolver")
        return lines + drift.source_drift(
            self.project.state.source_pins, info.restart_policy, sources.pins(self.config)
        )

    @cached_property
    def snapshot(self) -> dict[str, object]:
        return drift.snapshot(self.config, protect.snapshot(self.config))

    def execute(self, observed: UpObserved) -> None:
        """Carry out `plan_up`; at the question, plan again with the answer."""
        planned_from = self.project.state
        steps = plan_up(self.config, planned_from, observed)
        index = 0
        while index < len(steps):
            step = steps[index]
            if step.action is Action.ASK_REBUILD and observed.rebuild is None:
                answer = self.app.confirm("Rebuild container with new configuration?")
                observed = observed._replace(rebuild=answer)
                replanned = plan_up(self.config, planned_from, observed)
                if replanned[: index + 1] != steps[: index + 1]:
                    raise AlcaError("internal error: the plan before the question changed")
                steps = replanned
            else:
                self.observed = observed
                self.perform(step)
            index += 1

    def perform(self, step: Step) -> None:
        method: Callable[[Step], None] = getattr(self, "do_" + step.action.name.lower())
        method(step)

    def runtime(self, step: Step) -> Runtime:
        return self.runtimes[step.engine]

    # Refusals: nothing has changed yet.
    def do_check_isolation(self, step: Step) -> None:
        guard.check_guarantee(self.app, self.config, self.runtimes[self.observed.engine])

    def do_check_sync(self, step: Step) -> None:
        filesync.check_possible(self.app, self.runtimes[self.observed.engine], self.config)

    def do_check_setuid(self, step: Step) -> None:
        self.setuid_profile = spec.setuid_guard_profile(self.app, self.config)

    def do_check_host_ca(self, step: Step) -> None:
        self.ca_bundle = spec.host_ca_bundle(self.app, self.config, self.project)

    def do_check_protected(self, step: Step) -> None:
        self.protection = protect.placements_for(self.config)

    def do_check_sources(self, step: Step) -> None:
        sources.pins(self.config)  # refuses a workspace link

    # Identity and drift.
    def do_save_identity(self, step: Step) -> None:
        save_state(
            self.project,
            project_id=self.project_id,
            project_path=str(self.project.root),
            root_identity=tuple(state.root_identity(self.project.root)),
            container_name=self.name,
            runtime=self.observed.engine,
        )

    def do_show_drift(self, step: Step) -> None:
        if self.observed.force:
            self.app.step("Configuration changed, rebuilding container (-f)")
            return
        self.app.out("Configuration has changed since last container creation:")
        for line in step.detail:
            self.app.out(f"  {line}")

    def do_ask_rebuild(self, step: Step) -> None:
        """Answered by `execute` before this step is reached."""

    def do_refuse_detached(self, step: Step) -> None:
        raise RefusedError(
            "the existing container is outside its isolated network, so its "
            "traffic cannot be filtered; it was left as it is",
            hint="run 'alca up -f' to rebuild it on the isolated network, or "
            "'alca down' to remove it",
        )

    def do_keep_container(self, step: Step) -> None:
        self.app.info("Keeping existing container.")

    def do_announce_engine_change(self, step: Step) -> None:
        self.app.step(f"Runtime changed: {step.engine} → {self.observed.engine}")

    def do_stop_sync(self, step: Step) -> None:
        self.app.step("Removing existing container for rebuild...")
        filesync.stop(self.app, self.runtime(step), self.project_id)
        filesync.forget_conflicts(self.project.state_dir)

    def do_remove_container(self, step: Step) -> None:
        self.runtime(step).remove(self.name)

    def do_teardown(self, step: Step) -> None:
        guard.teardown(self.app, self.runtime(step), self.project.state.isolation)
        save_state(self.project, isolation=None)

    def do_forget_build(self, step: Step) -> None:
        save_state(self.project, setup_done=False, snapshot=None)
        self.info = None

    # The network and its rules, before any container of the project runs.
    def do_network(self, step: Step) -> None:
        self.network = guard.prepare_network(
            self.app, self.config, self.runtime(step), self.project_id, creating=self.info is None
        )

    def do_rules(self, step: Step) -> None:
        if self.network is None:
            raise AlcaError("internal error: RULES planned before NETWORK")
        self.isolation = guard.load_rules(
            self.app,
            self.config,
            self.runtime(step),
            self.network,
            self.project_id,
            self.project.state_dir,
        )

    def do_save_isolation(self, step: Step) -> None:
        save_state(self.project, isolation=self._isolation.record())

    @property
    def _isolation(self) -> guard.Isolation:
        if self.isolation is None:
            raise AlcaError("internal error: a step that needs the rules planned before RULES")
        return self.isolation

    # The container.
    def do_ensure_sources(self, step: Step) -> None:
        spec.ensure_sources(self.config, self.app.home)

    def do_placeholders(self, step: Step) -> None:
        made = protect.materialise(self.config.project_root, self.protection)
        if made:
            self.app.step("Created empty read-only placeholders: " + ", ".join(made))

    def do_save_pins(self, step: Step) -> None:
        save_state(self.project, source_pins=sources.pins(self.config))

    def do_create(self, step: Step) -> None:
        container = spec.container_spec(
            self.config,
            self.app,
            self.project_id,
            self.name,
            self._isolation.network.name,
            self.setuid_profile,
            self.protection,
            dns=self._isolation.dns,
            ca_bundle=self.ca_bundle,
        )
        with self.app.progress(f"Creating container: {self.name}"):  # may pull the image
            self.runtime(step).create(container)

    def do_save_created(self, step: Step) -> None:
        save_state(
            self.project,
            container_name=self.name,
            runtime=step.engine,
            created_at=project.now(),
            snapshot=self.snapshot,
            setup_done=False,
        )
        self.app.step("Container started")

    def do_already_running(self, step: Step) -> None:
        self.app.step(f"Container already running: {self.name}")

    def do_check_pins(self, step: Step) -> None:
        """The engine resolves the sources again on start: they must be the pinned ones."""
        changed = sources.replaced(self.project.state.source_pins, sources.pins(self.config))
        if changed:
            raise RefusedError(
                "workspace path ./" + printable(changed[0]) + " was replaced since the "
                "container was created; the container was not started",
                hint="restore it, or run 'alca up -f' to rebuild the sandbox from the project "
                "as it is now",
            )

    def do_start(self, step: Step) -> None:
        with self.app.progress(f"Starting stopped container: {self.name}"):
            self.runtime(step).start(self.name)
        self.app.step("Container started")

    def do_inner_layer(self, step: Step) -> None:
        """The second layer, inside the sandbox's namespace, before any of its commands run."""
        info = self.info
        running = info is not None and info.state is ContainerState.RUNNING
        pid = info.pid if running and info is not None else 0
        inside = guard.load_inner_layer(
            self.app, self.runtime(step), self._isolation, self.name, pid, new=info is None
        )
        self.run_isolation = guard.run_record(self._isolation, inside)

    # Inside the running sandbox.
    def do_keep_run_spec(self, step: Step) -> None:
        previous = self.project.state.run_spec
        if previous is not None:
            record = previous._replace(
                isolation=self.run_isolation, api_socket=self._api_socket(previous.executable)
            )
            save_state(self.project, run_spec=record)

    def do_prepare_paths(self, step: Step) -> None:
        filesync.prepare_container_paths(self.runtime(step), self.name, self.config)

    def do_sync(self, step: Step) -> None:
        filesync.start(self.app, self.runtime(step), self.config, self.project_id, self.name)

    def do_poll_conflicts(self, step: Step) -> None:
        filesync.poll_conflicts(
            self.app, self.runtime(step), self.project_id, self.project.state_dir
        )

    def do_setup(self, step: Step) -> None:
        project.run_setup(self.app, self.runtime(step), self.config, self.project, self.name)

    def do_save_run_spec(self, step: Step) -> None:
        record = spec.run_spec(
            self.config,
            self.runtime(step),
            self.name,
            self.run_isolation,
            api_socket=self._api_socket(self.runtime(step).executable),
        )
        save_state(self.project, run_spec=record)

    def _api_socket(self, executable: str) -> str:
        """Asked at every `up` (one `/_ping`, about a millisecond): a socket that stopped
        answering since the last `up` is dropped, so `run` goes straight to the CLI."""
        return spec.answering_api_socket(executable, self.app.environ)

    def do_release_lock(self, step: Step) -> None:
        self.lock.close()

    def do_hook(self, step: Step) -> None:
        code = project.run_hook(self.app, self.config, "post_up", self.config.post_up or "")
        if code != 0:
            raise AlcaError(
                f"post_up hook failed with exit code {code}; the container is up",
                hint="fix hooks.post_up and run 'alca up' again",
            )

    def do_done(self, step: Step) -> None:
        self.app.done("Environment ready")
