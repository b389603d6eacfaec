"""`alca doctor`'s checks of the project: its config, its approval, its sandbox's rules and
resolver, and host agent settings a writable mount exposes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from alcatraz.app import App
from alcatraz.commands.doctor.report import FAIL, INFO, OK, WARN, Check
from alcatraz.errors import AlcaError

if TYPE_CHECKING:
    from alcatraz.config.load import Config
    from alcatraz.statefile import IsolationRecord


@dataclass
class ProjectFindings:
    """What the project checks found; later checks adapt to it (runtime, needs)."""

    config: Config | None = None
    project_id: str | None = None
    record: IsolationRecord | None = None


def check_project(app: App, found: ProjectFindings) -> list[Check]:
    from alcatraz.paths import CONFIG_NAME, find_project_root

    root = find_project_root(app.cwd)
    if root is None:
        return [
            Check(
                "config",
                INFO,
                f"no {CONFIG_NAME} in {app.cwd} or its parents (project checks skipped)",
                "run 'alca init' in your project to create one",
            )
        ]
    from alcatraz.config.load import load_config

    path = root / CONFIG_NAME
    try:
        config = load_config(root, environ=app.environ, cwd=app.cwd)
    except AlcaError as error:
        return [
            Check(
                "config",
                FAIL,
                f"{path} does not load: {error.render()}",
                error.hint or f"correct {path} (see docs/config.md), then run 'alca doctor'",
            )
        ]
    found.config = config
    checks = [Check("config", OK, f"{path} loads"), _agent_config_check(app, config)]
    from alcatraz.sandbox import project as sandbox
    from alcatraz.sandbox import trust

    try:
        project = sandbox.open_project(app, root)
        approved = trust.check(config, project.state_dir).approved
    except AlcaError as error:
        return [*checks, Check("trust", FAIL, error.message, error.hint)]
    found.project_id = project.project_id
    found.record = project.state.isolation
    if approved:
        checks.append(Check("trust", OK, "the configuration is approved on this machine"))
    else:
        checks.append(
            Check(
                "trust",
                WARN,
                "the configuration is not approved (new, or changed since approval)",
                "review and approve it: alca trust",
            )
        )
    return checks


def _agent_config_check(app: App, config: Config) -> Check:
    """Warn when a writable mount reaches a file the host's agent runs (issue 13 item 7)."""
    from alcatraz.init.agents import writable_agent_config

    mounts = [(m.source, m.readonly) for m in config.all_mounts]
    exposed = writable_agent_config(mounts, app.environ)
    if not exposed:
        return Check("agent-config", OK, "no host agent settings, hooks or commands are writable")
    listed = ", ".join(sorted({path for _, path in exposed}))
    return Check(
        "agent-config",
        WARN,
        f"writable inside the sandbox, and run or obeyed by your agent on the host: {listed}",
        "mount them read-only, or compare with a fresh 'alca init --agent NAME' (docs/agents.md)",
    )


def check_names(found: ProjectFindings) -> Check | None:
    record = found.record
    if record is None or not record.enforced:
        return None
    from alcatraz.network import resolver

    names = resolver.describe(record.resolver)
    if names["state"] == "engine":
        return Check("names", INFO, "the engine's resolver serves the sandbox")
    upstreams = [str(u) for u in names.get("upstreams") or []]
    if names["state"] != "running" and names.get("egress") is not None:
        return Check(
            "names", FAIL,
            f"the project's egress daemon on {names['listen']} is not running: no name "
            "resolves and nothing passes (egress fails closed)",
            "alca up starts it again",
        )  # fmt: skip
    if names["state"] != "running":
        return Check(
            "names", FAIL,
            f"the project's resolver on {names['listen']} is not running: no name resolves "
            "inside the sandbox",
            "alca up (or any alca run) starts it again",
        )  # fmt: skip
    if not upstreams:
        return Check(
            "names", FAIL, f"no nameserver in {names['resolv_conf']}: no name resolves inside",
            "fix the host's resolver configuration",
        )  # fmt: skip
    egress = names.get("egress")
    limited = "" if egress is None else f"; egress limited to {len(egress)} entries"
    return Check(
        "names",
        OK,
        f"the project's resolver on {names['listen']} asks {', '.join(upstreams)}{limited}",
    )


# -- the running sandbox --------------------------------------------------------------------


def check_sandbox(app: App, found: ProjectFindings) -> Check | None:
    if found.config is None or found.project_id is None:
        return None
    if found.record is None:
        return Check("sandbox", INFO, "no sandbox network yet", "alca up")
    from alcatraz.sandbox import netreport as isolation

    try:
        result = isolation.report(app, found.config, found.project_id, found.record)
    except AlcaError as error:
        return Check("sandbox", FAIL, f"cannot read the rules: {error.message}", error.hint)
    state = result.get("state")
    where = f"{result.get('network')} ({result.get('subnet')})"
    if state == "enabled":
        return Check("sandbox", OK, f"isolation enabled on {where}")
    if state == "off":
        return Check(
            "sandbox",
            WARN,
            f'isolation off on {where}: lan-access = ["*"] lets it reach your LAN and this host',
            'remove "*" from network.lan-access, then alca up',
        )
    if state == "none":
        return Check("sandbox", INFO, "no sandbox network yet", "alca up")
    return Check(
        "sandbox",
        FAIL,
        f"isolation {state} on {where}: the kernel does not hold this configuration's rules",
        "alca up (re-applies the rules)",
    )
