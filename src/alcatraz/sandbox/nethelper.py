"""The network helper (rules restored at boot) as this machine has it: state and actions.

Used by `up` (through `alcatraz.sandbox.guard`), `alca network-helper` and `doctor`.
"""

from __future__ import annotations

import sys

from alcatraz.app import App
from alcatraz.errors import AlcaError
from alcatraz.network.firewall import HELPER_NAME, Firewall, firewall_for
from alcatraz.sandbox.project import ENGINES


class Helper:
    """Installation state and actions of the network helper for this machine."""

    def __init__(self, app: App, engine: str):
        from alcatraz.network import helper as helper_module

        self.app = app
        self.engine = engine
        self.mechanism = app.environ.get("ALCA_FIREWALL") or (
            "native" if sys.platform == "linux" else "helper"
        )
        self.module = helper_module
        self.paths = helper_module.native_paths(app.environ)

    @classmethod
    def for_app(cls, app: App) -> Helper:
        engine = app.environ.get("ALCA_RUNTIME") or "docker"
        return cls(app, engine if engine in ENGINES else "docker")

    def describe(self) -> str:
        if self.mechanism == "native":
            return (
                f"native nftables; rules saved in {self.paths.rules}, included by {self.paths.conf}"
            )
        return f"helper container {HELPER_NAME} ({self.engine})"

    def firewall(self) -> Firewall:
        return firewall_for(self.app.runner, self.app.environ, self.engine)

    def installed(self) -> bool:
        if self.mechanism == "native":
            return self.module.native_installed(self.paths)
        return self.module.helper_running(self.app.runner, self.engine)

    def table_exists(self) -> bool:
        try:
            return self.firewall().read().exists
        except AlcaError:
            return False

    def install(self) -> list[str]:
        if self.mechanism == "native":
            done = self.module.native_install(self.paths)
            if "ALCA_NFT_CONF" in self.app.environ:
                done.append(f"Custom ALCA_NFT_CONF: make sure {self.paths.conf} is loaded at boot")
            else:
                systemctl = self.app.runner.run(
                    ["systemctl", "enable", "nftables.service"], timeout=30
                )
                done.append(
                    "Enabled nftables.service (restores the rules at boot)"
                    if systemctl.ok
                    else f"Could not enable nftables.service: make sure {self.paths.conf} is "
                    "loaded at boot"
                )
            self.persist(self.firewall())
            return done
        self.module.helper_install(self.app.runner, self.engine, self.app.home, self.app.environ)
        self.persist(self.firewall())
        return [f"Started {HELPER_NAME}"]

    def uninstall(self) -> list[str]:
        done: list[str] = []
        try:
            fw = self.firewall()
            if fw.read().exists:
                fw.delete_table()
                done.append("Deleted nftables table inet alcatraz")
        except AlcaError as error:
            done.append(f"Could not delete the rules: {error.message}")
        if self.mechanism == "native":
            done += self.module.native_uninstall(self.paths)
        else:
            self.module.helper_uninstall(self.app.runner, self.engine)
            done.append(f"Removed {HELPER_NAME}")
        return done

    def persist(self, fw: Firewall) -> None:
        """Save the live table where it is restored from at boot (when installed)."""
        if self.mechanism == "native":
            if self.module.native_installed(self.paths):
                self.module.save(fw, self.paths.rules)
        else:
            self.module.save(
                fw, self.module.helper_rules_dir(self.app.home) / self.module.RULES_FILE
            )

    def loaded_projects(self) -> dict[str, str]:
        """Project key -> a one-line summary, read from the kernel."""
        try:
            table = self.firewall().read()
        except AlcaError:
            return {}
        loaded: dict[str, str] = {}
        for chain in sorted(table.chains):
            if chain.startswith("p_") and chain.endswith("_fwd"):
                key = chain[2:-4]
                interfaces = [
                    name
                    for name, target in table.dispatch.get("fwd_dispatch", {}).items()
                    if target == chain
                ]
                blocked = table.counters.get(chain, 0) + table.counters.get(f"p_{key}_in", 0)
                loaded[key] = (
                    f"bridge {', '.join(interfaces) or '(none)'}, {blocked} packets blocked"
                )
        return loaded
