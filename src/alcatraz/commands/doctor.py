"""`alca doctor`: check everything a sandbox depends on, each with the exact fix.

Every check reports ok, warn, fail or info and never raises: a broken piece must not hide
the report on the others. Programs are looked up and run with the App's environment (its
PATH, DOCKER_HOST, ...), so what doctor sees is what `alca up` would see. Exit status is 0
when nothing fails, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from alcatraz.app import App
from alcatraz.errors import AlcaError, ExitCode
from alcatraz.proc import Result, Runner

if TYPE_CHECKING:
    from alcatraz.config.load import Config
    from alcatraz.runtime.base import Runtime
    from alcatraz.statefile import IsolationRecord

OK: Final = "ok"
WARN: Final = "warn"
FAIL: Final = "fail"
INFO: Final = "info"
_MARKS: Final = {OK: "✓", WARN: "!", FAIL: "✗", INFO: "·"}
_BRIDGE_SYSCTL: Final = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
_ENGINE_HINTS: Final = {
    "docker": "start the Docker daemon (e.g. `sudo systemctl start docker`), or check "
    "DOCKER_HOST/`docker context`; install: https://docs.docker.com/engine/install/",
    "podman": "install Podman (e.g. `sudo apt install podman`): https://podman.io/docs/installation",
}


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, what was found, and how to fix it."""

    name: str
    status: str
    summary: str
    fix: str | None = None


class _EnvRunner:
    """A runner whose programs see the App's environment rather than the process's."""

    def __init__(self, runner: Runner, environ: Mapping[str, str]):
        self.runner = runner
        self.environ = dict(environ)

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> Result:
        return self.runner.run(
            argv,
            input=input,
            env=self.environ if env is None else env,
            cwd=cwd,
            timeout=timeout,
            check=check,
        )

    def stream(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> int:
        return self.runner.stream(argv, env=self.environ if env is None else env, cwd=cwd)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _which(app: App, program: str) -> str | None:
    return shutil.which(program, path=app.environ.get("PATH", os.defpath))


def _fix_of(error: AlcaError) -> str | None:
    return error.hint


# -- project --------------------------------------------------------------------------------


@dataclass
class _Project:
    """What the project checks found; later checks adapt to it (runtime, needs)."""

    config: Config | None = None
    project_id: str | None = None
    record: IsolationRecord | None = None


def _check_project(app: App, found: _Project) -> list[Check]:
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
                _fix_of(error) or f"correct {path} (see docs/config.md), then run 'alca doctor'",
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
        return [*checks, Check("trust", FAIL, error.message, _fix_of(error))]
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


# -- engines --------------------------------------------------------------------------------


def _engine_check(app: App, runner: Runner, engine: str, selected: str | None) -> Check:
    from alcatraz.runtime.docker import DockerRuntime
    from alcatraz.runtime.podman import PodmanRuntime

    required = selected == engine
    runtime: Runtime = DockerRuntime(runner) if engine == "docker" else PodmanRuntime(runner)
    if _which(app, engine) is None:
        return Check(
            engine,
            FAIL if required else WARN,
            f"{engine} is not installed (not on PATH)"
            + (f", but the runtime selection asks for {engine}" if required else ""),
            _ENGINE_HINTS["podman"]
            if engine == "podman"
            else "install Docker Engine: https://docs.docker.com/engine/install/",
        )
    try:
        version = runtime.version()
    except AlcaError as error:
        where = app.environ.get("DOCKER_HOST" if engine == "docker" else "CONTAINER_HOST")
        return Check(
            engine,
            FAIL,
            f"{engine} is installed but the engine does not answer"
            + (f" at {where}" if where else "")
            + f": {error.message.splitlines()[0]}",
            _ENGINE_HINTS[engine],
        )
    try:
        rootless = runtime.is_rootless()
    except AlcaError as error:
        return Check(engine, WARN, f"{engine} {version} answers; rootless: unknown", error.hint)
    if rootless:
        return Check(
            engine,
            WARN,
            f"{engine} {version} answers, rootless: network isolation cannot be guaranteed",
            f"use a rootful {engine} (e.g. run alca with sudo), or opt out knowingly with "
            'lan-access = ["*"]',
        )
    return Check(engine, OK, f"{engine} {version} answers (rootful)")


def _selection(app: App, config: Config | None) -> tuple[str, str | None]:
    """The configured value and the engine it insists on (None for auto)."""
    from alcatraz.runtime.detect import RUNTIME_ENV

    configured = config.runtime if config is not None else "auto"
    if configured in ("docker", "podman"):
        return configured, configured
    env_value = app.environ.get(RUNTIME_ENV, "")
    return configured, env_value if env_value in ("docker", "podman") else None


def _check_engines(
    app: App, runner: Runner, config: Config | None
) -> tuple[list[Check], Runtime | None]:
    from alcatraz.runtime.detect import resolve_runtime

    configured, selected = _selection(app, config)
    checks = [_engine_check(app, runner, engine, selected) for engine in ("docker", "podman")]
    try:
        runtime, reason = resolve_runtime(
            configured, runner=runner, environ=app.environ, platform=sys.platform
        )
    except AlcaError as error:
        checks.append(Check("runtime", FAIL, error.message, _fix_of(error)))
        return checks, None
    checks.append(Check("runtime", OK, f"{runtime.name} ({reason})"))
    return checks, runtime


# -- network --------------------------------------------------------------------------------


def _check_network(app: App, runner: Runner, config: Config | None, engine: str) -> list[Check]:
    from alcatraz.network.firewall import firewall_for
    from alcatraz.sandbox.guard import needs_firewall
    from alcatraz.sandbox.nethelper import Helper

    severity = FAIL if config is None or needs_firewall(config) else WARN
    helper = Helper(app, engine)
    nft_missing = _which(app, "nft") is None and "ALCA_NFT" not in app.environ
    if helper.mechanism == "native" and nft_missing:
        return [
            Check(
                "nftables",
                severity,
                "nft is not installed (not on PATH)",
                "install nftables (e.g. `sudo apt install nftables`)",
            ),
            _helper_check(helper),
            _bridge_check(),
        ]
    try:
        fw = firewall_for(runner, app.environ, engine)
    except AlcaError as error:
        return [
            Check("nftables", severity, error.message, _fix_of(error)),
            _helper_check(helper),
            _bridge_check(),
        ]
    checks: list[Check] = []
    checks.append(Check("nftables", OK, f"usable as this user via `{' '.join(fw.command)}`"))
    try:
        fw.probe()
    except AlcaError as error:
        checks.append(
            Check(
                "kernel",
                severity,
                f"nf_tables is not usable: {error.message}",
                "load the nf_tables module (`sudo modprobe nf_tables`) or use a kernel built "
                "with it; in a container, run it with CAP_NET_ADMIN in the host network",
            )
        )
    else:
        checks.append(Check("kernel", OK, "nf_tables usable (`nft list tables` works)"))
    checks.append(_helper_check(helper))
    checks.append(_bridge_check())
    return checks


def _helper_check(helper: Any) -> Check:
    try:
        installed = bool(helper.installed())
    except AlcaError as error:
        return Check("network-helper", WARN, f"cannot tell: {error.message}", error.hint)
    if installed:
        return Check("network-helper", OK, f"installed ({helper.describe()})")
    return Check(
        "network-helper",
        WARN,
        "not installed: isolation rules would not survive a reboot ('alca up' offers to "
        "install it)",
        "alca network-helper install",
    )


def _bridge_check() -> Check:
    """Information only: alcatraz's own rules do not depend on br_netfilter."""
    if sys.platform != "linux":
        return Check("br_netfilter", INFO, "not applicable on this platform")
    if _BRIDGE_SYSCTL.exists():
        return Check("br_netfilter", INFO, f"loaded ({_BRIDGE_SYSCTL} present)")
    return Check(
        "br_netfilter",
        INFO,
        f"not loaded ({_BRIDGE_SYSCTL} absent): fine, alcatraz filters each sandbox's own "
        "bridge in the inet forward and input hooks and does not rely on it",
    )


# -- sync -----------------------------------------------------------------------------------


def _check_mutagen(app: App, runner: Runner, config: Config | None, engine: str) -> Check:
    from alcatraz.sandbox import filesync
    from alcatraz.sync.mutagen import INSTALL_HINT, Mutagen

    needed = config is None or filesync.needs_sync(config)
    severity = FAIL if needed else WARN
    why = "" if needed else " (this project hides no files, so it does not need it)"
    try:
        mutagen = Mutagen(
            runner, data_dir=filesync.data_dir(app, engine), engine=engine, environ=app.environ
        )
        version = mutagen.check_installed()
    except AlcaError as error:
        return Check("mutagen", severity, error.message + why, error.hint or INSTALL_HINT)
    return Check("mutagen", OK, f"mutagen {version} with its agent bundle")


# -- the setuid guard -----------------------------------------------------------------------


def _check_setuid_guard(app: App, config: Config | None) -> Check:
    from alcatraz import seccomp
    from alcatraz.sandbox import spec as sandbox

    if sys.platform == "darwin":
        return Check("setuid-guard", INFO, "not needed: the engine's VM writes files as you")
    if config is not None and not seccomp.config_needs_guard(config):
        return Check(
            "setuid-guard", OK, "not needed: nothing is bind-mounted writable from the host"
        )
    try:
        path = sandbox.write_guard_profile(app)
    except AlcaError as error:
        return Check("setuid-guard", FAIL, error.message, error.hint)
    return Check("setuid-guard", OK, f"seccomp profile ready ({path})")


def _check_host_ca(app: App, config: Config | None) -> Check:
    """CAs the host trusts beyond a public store: HTTPS inside fails for what they sign."""
    from alcatraz import hostca

    count, sources = hostca.extra_authorities(app.environ)
    if config is not None and config.host_ca:
        return Check("host-ca", OK, f"the host's CA certificates reach the sandbox ({count} "
                     "beyond the public store)")  # fmt: skip
    if count == 0:
        return Check("host-ca", OK, "the host trusts no CA beyond the public store")
    return Check(
        "host-ca",
        WARN,
        f"this host trusts {count} CA certificate{'s' if count != 1 else ''} that a default "
        f"store lacks (in {', '.join(sources)}): HTTPS inside the sandbox fails for sites "
        "they sign ('unable to get local issuer certificate', e.g. behind a "
        "TLS-intercepting proxy)",
        "set host-ca = true under [network], then alca up -f (docs/config.md, host-ca)",
    )


def _check_names(found: _Project) -> Check | None:
    record = found.record
    if record is None or not record.enforced:
        return None
    from alcatraz.network import resolver

    names = resolver.describe(record.resolver)
    if names["state"] == "engine":
        return Check("names", INFO, "the engine's resolver serves the sandbox")
    upstreams = [str(u) for u in names.get("upstreams") or []]
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
    return Check(
        "names", OK, f"the project's resolver on {names['listen']} asks {', '.join(upstreams)}"
    )


# -- the running sandbox --------------------------------------------------------------------


def _check_sandbox(app: App, found: _Project) -> Check | None:
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


# -- the command ----------------------------------------------------------------------------


def collect(app: App) -> list[Check]:
    """Every check, in the order a user would fix them."""
    runner = _EnvRunner(app.runner, app.environ)
    found = _Project()
    project_checks = _check_project(app, found)
    engine_checks, runtime = _check_engines(app, runner, found.config)
    engine = runtime.executable if runtime is not None else "docker"
    checks = [*engine_checks]
    checks += _check_network(app, runner, found.config, engine)
    checks.append(_check_mutagen(app, runner, found.config, engine))
    checks.append(_check_setuid_guard(app, found.config))
    checks += project_checks
    sandbox_check = _check_sandbox(app, found)
    if sandbox_check is not None:
        checks.append(sandbox_check)
    names_check = _check_names(found)
    if names_check is not None:
        checks.append(names_check)
    checks.append(_check_host_ca(app, found.config))
    return checks


def main(args: argparse.Namespace, app: App) -> int:
    checks = collect(app)
    failed = any(c.status == FAIL for c in checks)
    if args.json:
        app.out(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        width = max(len(c.name) for c in checks)
        for check in checks:
            app.out(f"{_MARKS[check.status]} {check.name.ljust(width)}  {check.summary}")
            if check.fix and check.status in (WARN, FAIL):
                app.out(" " * (width + 4) + "Fix: " + check.fix)
        counts = {s: sum(1 for c in checks if c.status == s) for s in (FAIL, WARN)}
        app.out()
        app.out(
            f"{counts[FAIL]} failed, {counts[WARN]} warning{'s' if counts[WARN] != 1 else ''}"
            if failed or counts[WARN]
            else "Everything alcatraz needs is in place."
        )
    return ExitCode.FAILURE if failed else ExitCode.OK
