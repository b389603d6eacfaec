"""`alca doctor`'s checks of the host: engines, nftables, Mutagen, the setuid guard, CAs.

Programs are looked up and run with the App's environment (its PATH, DOCKER_HOST, ...), so
what doctor sees is what `alca up` would see.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from alcatraz.app import App
from alcatraz.commands.doctor.report import FAIL, INFO, OK, WARN, Check
from alcatraz.errors import AlcaError
from alcatraz.proc import Result, Runner

if TYPE_CHECKING:
    from alcatraz.config.load import Config
    from alcatraz.runtime.base import Runtime

_BRIDGE_SYSCTL: Final = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
_ENGINE_HINTS: Final = {
    "docker": "start the Docker daemon (e.g. `sudo systemctl start docker`), or check "
    "DOCKER_HOST/`docker context`; install: https://docs.docker.com/engine/install/",
    "podman": "install Podman (e.g. `sudo apt install podman`): https://podman.io/docs/installation",
}


class EnvRunner:
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


def _which(app: App, program: str) -> str | None:
    return shutil.which(program, path=app.environ.get("PATH", os.defpath))


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
    from alcatraz.sandbox.project import ENGINES

    configured = config.runtime if config is not None else "auto"
    if configured in ENGINES:
        return configured, configured
    env_value = app.environ.get(RUNTIME_ENV, "")
    return configured, env_value if env_value in ENGINES else None


def check_engines(
    app: App, runner: Runner, config: Config | None
) -> tuple[list[Check], Runtime | None]:
    from alcatraz.runtime.detect import resolve_runtime
    from alcatraz.sandbox.project import ENGINES

    configured, selected = _selection(app, config)
    checks = [_engine_check(app, runner, engine, selected) for engine in ENGINES]
    try:
        runtime, reason = resolve_runtime(
            configured, runner=runner, environ=app.environ, platform=sys.platform
        )
    except AlcaError as error:
        checks.append(Check("runtime", FAIL, error.message, error.hint))
        return checks, None
    checks.append(Check("runtime", OK, f"{runtime.name} ({reason})"))
    return checks, runtime


# -- network --------------------------------------------------------------------------------


def check_network(app: App, runner: Runner, config: Config | None, engine: str) -> list[Check]:
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
            Check("nftables", severity, error.message, error.hint),
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


def check_mutagen(app: App, runner: Runner, config: Config | None, engine: str) -> Check:
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


def check_setuid_guard(app: App, config: Config | None) -> Check:
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


def check_host_ca(app: App, config: Config | None) -> Check:
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
