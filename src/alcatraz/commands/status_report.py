"""What `alca status` found, as types, and the pure functions that render it.

`commands/status.py` gathers a `StatusReport` (it reads the config, the state, the engine,
the kernel's rules, Mutagen); everything here only turns one into text or JSON, so each
line of the output can be tested without an engine. Parts that a lower layer reports (the
isolation rules, the resolver, the sync sessions) stay that layer's mappings and reach
`--json` unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from alcatraz.runtime.base import ContainerState

if TYPE_CHECKING:
    from alcatraz.sync.conflicts import Conflict

RUNNING: Final = ContainerState.RUNNING.value  # the report carries the states' values
STOPPED: Final = ContainerState.STOPPED.value
NOT_FOUND: Final = ContainerState.NOT_FOUND.value


@dataclass(frozen=True)
class ContainerView:
    """The project's container as `status` shows it; only `state` when there is none."""

    state: str
    id: str = ""
    name: str = ""
    image: str = ""
    started_at: str = ""

    def to_json(self) -> dict[str, str]:
        if self.state == NOT_FOUND:
            return {"state": self.state}
        return {
            "state": self.state,
            "id": self.id,
            "name": self.name,
            "image": self.image,
            "started_at": self.started_at,
        }


@dataclass(frozen=True)
class SyncView:
    """The file sync of a running container, or the error that hid it."""

    sessions: tuple[Mapping[str, Any], ...] = ()  # as filesync.describe_sessions has them
    conflicts: tuple[Conflict, ...] = ()
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error}
        return {
            "sessions": list(self.sessions),
            "conflicts": [
                {
                    "path": c.path,
                    "mount": c.mount_index,
                    "local": c.local_state,
                    "container": c.container_state,
                    "description": c.describe(),
                }
                for c in self.conflicts
            ],
        }


class AgentView(NamedTuple):
    """The `agent` preset of the config: its name, label and the command that starts it."""

    name: str
    label: str
    start: str | None  # None: not a preset of this alcatraz (a newer config, a typo)


def agent_line(agent: AgentView) -> str:
    if agent.start is None:
        return f"Agent: {agent.name} (not a preset of this alcatraz version)"
    return f"Agent: {agent.label}; start it with: {agent.start}"


@dataclass(frozen=True)
class StatusReport:
    """Everything `status` found. It stops at the first thing that is missing: no config,
    a replaced directory, no engine, no sandbox yet, no container."""

    initialized: bool
    config: str = ""
    replaced: bool = False
    approved: bool = False
    agent: AgentView | None = None  # the config's `agent` preset
    runtime: str | None = None
    runtime_error: str = ""
    runtime_reason: str = ""
    project_id: str | None = None
    isolation: Mapping[str, Any] | None = None  # as isolation.report has it
    names: Mapping[str, Any] | None = None  # as resolver.describe has it
    container: ContainerView | None = None
    sync: SyncView | None = None  # only for a running container that syncs
    drift: tuple[str, ...] | None = None  # only for an existing container

    def to_json(self) -> dict[str, Any]:
        """`status --json`: only the keys the gathering reached, in the order it reached them."""
        if not self.initialized:
            return {"initialized": False}
        data: dict[str, Any] = {"initialized": True, "config": self.config}
        if self.replaced:
            data["replaced"] = True
        data["approved"] = self.approved
        if self.agent is not None:
            data["agent"] = self.agent._asdict()
        data["runtime"] = self.runtime
        if self.runtime is None:
            data["runtime_error"] = self.runtime_error
            return data
        data["runtime_reason"] = self.runtime_reason
        data["project_id"] = self.project_id
        if self.project_id is None:
            return {**data, "container": None, "isolation": dict(self.isolation or {})}
        data["isolation"] = dict(self.isolation or {})
        if self.names is not None:
            data["names"] = dict(self.names)
        data["container"] = self.container.to_json() if self.container is not None else None
        if self.sync is not None:
            data["sync"] = self.sync.to_json()
        if self.drift is not None:
            data["drift"] = list(self.drift)
        return data


class Line(NamedTuple):
    """One line of output; the sync conflict banner goes to stderr, like `alca run`'s."""

    text: str = ""
    to_stderr: bool = False


def render(report: StatusReport) -> list[Line]:
    """The text `alca status` prints for `report`."""
    if not report.initialized:
        return _lines(
            "Status: Not initialized", "", "Run 'alca init' to create a configuration file."
        )
    lines = _lines(
        "Status: Initialized",
        f"Config: {report.config}",
        f"Approved: {'Yes' if report.approved else 'No (run alca trust)'}",
    )
    if report.agent is not None:
        lines += _lines(agent_line(report.agent))
    lines += _lines("")
    if report.runtime is None:
        return lines + _lines("Runtime: None available", "", f"Error: {report.runtime_error}")
    lines += _lines(f"Runtime: {report.runtime}", "")
    if report.project_id is None:
        return lines + _lines("State: Not created", "", "Run 'alca up' to create the container.")
    lines += _lines(
        f"Project ID: {report.project_id}",
        f"Network isolation: {isolation_line(report.isolation or {})}",
    )
    if report.names:
        lines += _lines(f"Names: {names_line(report.names)}")
    return lines + _lines("") + _container_lines(report)


def _lines(*texts: str) -> list[Line]:
    return [Line(text) for text in texts]


def _container_lines(report: StatusReport) -> list[Line]:
    container = report.container or ContainerView(state="")
    drift = report.drift or ()
    if container.state == RUNNING:
        lines = _lines(
            "Container: Running",
            f"  ID:    {container.id}",
            f"  Name:  {container.name}",
            f"  Image: {container.image}",
            f"  Started: {container.started_at}",
            "",
        )
        if report.sync is not None:
            lines += sync_lines(report.sync)
        if drift:
            lines += _lines("Configuration has changed since last container creation:")
            lines += _lines(*(f"  {line}" for line in drift))
            lines += _lines("", "Run 'alca up -f' to rebuild with new configuration.", "")
        return lines + _lines("Run 'alca run <command>' to execute commands.")
    if container.state == STOPPED:
        return _lines(
            "Container: Stopped",
            "",
            *(f"  {line}" for line in drift),
            "Run 'alca up' to start the container.",
        )
    if container.state == NOT_FOUND:
        return _lines(
            "Container: Not created", "", "Run 'alca up' to create and start the container."
        )
    return _lines("Container: Unknown state")


def sync_lines(sync: SyncView) -> list[Line]:
    """Sessions and conflicts; the conflicts' banner goes to stderr."""
    if sync.error is not None:
        return _lines(f"File sync: unknown ({sync.error})", "")
    healthy = sum(1 for s in sync.sessions if s["healthy"])
    count = len(sync.conflicts)
    lines = _lines(
        f"File sync: {healthy}/{len(sync.sessions)} session(s) healthy, "
        f"{count} conflict{'s' if count != 1 else ''}"
    )
    for session in sync.sessions:
        state = "ok" if session["healthy"] else "PROBLEM"
        lines += _lines(f"  - mount {session['mount']}: {session['summary']} [{state}]")
    if sync.conflicts:
        from alcatraz.sync.conflicts import banner

        lines.append(Line(banner(sync.conflicts), to_stderr=True))
    return lines + _lines("")


_OFF = 'Off (lan-access = ["*"]: the sandbox may reach your LAN and this host)'


def isolation_line(isolation: Mapping[str, Any]) -> str:
    state = isolation.get("state")
    if state == "enabled" and isolation.get("lan") == "all":  # ["*"] with a proxy
        return f"{_OFF}; transparent proxy rules loaded"
    if state == "enabled":
        blocked = isolation.get("blocked", 0)
        return (
            f"Enabled on {isolation.get('network')} ({isolation.get('subnet')}); "
            f"{blocked} blocked attempt{'s' if blocked != 1 else ''} (see 'alca net log')"
        )
    if state == "off":
        return _OFF
    if state == "outdated":
        return "Outdated: the rules are from an older configuration; run 'alca up' to apply"
    if state == "missing":
        return "MISSING: the rules are not loaded; run 'alca up' to restore them"
    if state == "unknown":
        return f"Unknown ({isolation.get('error')})"
    return "Not set up yet (run 'alca up')"


def names_line(names: Mapping[str, Any]) -> str:
    state = names.get("state")
    if state == "engine":
        return "the engine's resolver"
    upstreams = ", ".join(names.get("upstreams") or []) or f"none in {names.get('resolv_conf')}"
    egress = names.get("egress")
    if state == "running" and egress is not None:
        return (
            f"the project's resolver on {names.get('listen')} (asks {upstreams}); egress: "
            f"{len(egress)} allowed entries, every other name refused"
        )
    if state == "running":
        return f"the project's resolver on {names.get('listen')} (asks {upstreams})"
    if egress is not None:
        return (
            f"DOWN: the project's egress daemon on {names.get('listen')} is not running, so "
            "nothing passes ('alca up' starts it)"
        )
    return (
        f"NOT RESOLVED: the project's resolver on {names.get('listen')} is not running "
        "('alca run' or 'alca up' starts it)"
    )
