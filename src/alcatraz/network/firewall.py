"""The firewall effect layer: load, verify and remove alcatraz's nftables rules.

One implementation, driving the `nft` CLI with text in and JSON out. How `nft` is reached
is a prefix of argv, chosen once:

- `native`: `nft` on this host, as root, or through `sudo -n` (never a password prompt);
- `helper`: inside a privileged helper container with the host's PID namespace, through
  `nsenter` into the engine host's namespaces (how Docker Desktop/OrbStack VMs are reached;
  it works against a Linux host too).

Every change is one `nft -f -` transaction, verified after by reading the project's objects
back: an error never leaves a half-applied policy, and `up` refuses rather than starting an
unprotected container. As root, the project's objects are read from the kernel directly
(`nlread`), so the cost of a check does not grow with the number of projects.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence

from alcatraz.errors import AlcaError, RefusedError, UnavailableError
from alcatraz.network import nft
from alcatraz.network.plan import Policy
from alcatraz.network.tablestate import TableState as TableState  # importers use this name
from alcatraz.network.tablestate import parse_table as parse_table
from alcatraz.proc import Runner

NFT_TIMEOUT = 30.0
DISPATCH_MAPS = ("fwd_dispatch", "in_dispatch", "nat_dispatch")


class Firewall:
    """nftables through one argv prefix."""

    def __init__(
        self, runner: Runner, command: Sequence[str] = ("nft",), mechanism: str = "native"
    ):
        self.runner = runner
        self.command = list(command)
        self.mechanism = mechanism

    def _nft(self, args: Sequence[str], *, script: str | None = None, check: bool = True) -> str:
        result = self.runner.run([*self.command, *args], input=script, timeout=NFT_TIMEOUT)
        if check and not result.ok:
            detail = result.stderr.strip() or result.stdout.strip() or f"exit {result.returncode}"
            raise AlcaError(
                f"nftables refused alcatraz's rules: {detail}",
                hint="nothing was changed (the rules are applied as one transaction); "
                "run with ALCA_DEBUG=1 to see the script, and report it if it looks wrong",
            )
        return result.stdout

    def _kernel_direct(self) -> bool:
        """Whether the kernel can be asked directly (`nlread`): plain `nft` as root."""
        return self.mechanism == "native" and self.command == ["nft"] and os.geteuid() == 0

    def probe(self) -> None:
        """Raise UnavailableError/RefusedError unless rules can be loaded.

        As root with `nft` on PATH, one netlink request proves it (`nft list tables` builds
        the cache of every table: ~100 ms with 200 projects)."""
        if self._kernel_direct() and shutil.which(self.command[0]):
            from alcatraz.network import nlread

            try:
                nlread.read_objects(nft.TABLE, (), (), ())
                return
            except nlread.Unreadable:
                pass
        result = self.runner.run([*self.command, "list", "tables"], timeout=NFT_TIMEOUT)
        if not result.ok:
            detail = result.stderr.strip() or f"exit {result.returncode}"
            raise RefusedError(
                f"cannot manage nftables ({' '.join(self.command)}): {detail}",
                hint="run alca as root, allow `sudo -n nft` for your user, or install the "
                "network helper ('alca network-helper install')",
            )

    def read(self, table: str = nft.TABLE) -> TableState:
        result = self.runner.run(
            [*self.command, "-j", "list", "table", nft.FAMILY, table], timeout=NFT_TIMEOUT
        )
        if not result.ok:
            if "No such file or directory" in result.stderr or "does not exist" in result.stderr:
                return TableState(exists=False)
            raise AlcaError(
                f"cannot read nftables: {result.stderr.strip() or result.returncode}",
                hint="check that nftables works: nft list tables",
            )
        try:
            return parse_table(json.loads(result.stdout or "{}"))
        except (ValueError, KeyError, TypeError) as error:
            raise AlcaError(f"cannot parse nft's JSON output: {error}") from None

    def read_project(
        self, key: str, *, interface: str | None = None, seen: bool = False
    ) -> TableState:
        """The project's own chains and the dispatch maps (with `seen`, its seen-sets too),
        as `read` would show them: never the whole table where the kernel can be asked
        directly (`nlread`: ~1 ms at any number of projects); else `read`."""
        if self._kernel_direct():
            from alcatraz.network import nlread

            try:
                sets = nft.seen_sets(key) if seen else ()
                return nlread.read_objects(
                    nft.TABLE, nft.chain_names(key), DISPATCH_MAPS, sets, interface=interface
                )
            except nlread.Unreadable:
                pass
        return self.read()

    def table_exists(self) -> bool:
        """Whether `inet alcatraz` exists (one netlink request where it can be asked)."""
        if self._kernel_direct():
            from alcatraz.network import nlread

            try:
                return nlread.read_objects(nft.TABLE, (), (), ()).exists
            except nlread.Unreadable:
                pass
        return self.read().exists

    def apply(self, policy: Policy, current: TableState | None = None, extra: str = "") -> None:
        """Load the project's policy atomically, then verify it is what the kernel holds.

        `current` is the table (or the project's part of it) as just read by the caller, to
        avoid reading it twice; `extra` joins the same transaction (the host-LAN sets' first
        elements). No `nft -c` first: the transaction is atomic, so a refused script changes
        nothing either way. The check after reads only the project's objects.
        """
        current = current or self.read_project(policy.key, interface=policy.network.interface)
        script = nft.apply_script(policy, current.interfaces()) + extra
        self._nft(["-f", "-"], script=script)
        if not self.verify(
            policy, self.read_project(policy.key, interface=policy.network.interface)
        ):
            raise RefusedError(
                "the network isolation rules did not load as expected",
                hint="check `nft list table inet alcatraz`; another tool may be rewriting it",
            )

    def verify(self, policy: Policy, state: TableState | None = None) -> bool:
        """True when the kernel enforces exactly `policy` for the project's bridge."""
        current = state or self.read()
        if not current.exists:
            return False
        fwd, inp, nat = nft.chain_names(policy.key)
        tag = f"alcatraz {policy.key} {nft.policy_digest(policy)}"
        ifname = policy.network.interface
        return (
            current.tags.get(fwd) == tag
            and current.tags.get(inp) == tag
            and current.dispatch.get("fwd_dispatch", {}).get(ifname) == fwd
            and current.dispatch.get("in_dispatch", {}).get(ifname) == inp
            and current.dispatch.get("nat_dispatch", {}).get(ifname) == nat
            and nat in current.chains
        )

    def delete_table(self) -> None:
        """Drop alcatraz's whole table (`alca network-helper uninstall`; ours alone)."""
        self._nft(["delete", "table", nft.FAMILY, nft.TABLE])

    def remove(self, key: str, interfaces: Iterable[str]) -> None:
        current = self.read()
        if not current.exists:
            return
        script = nft.removal_script(key, interfaces, current.interfaces(), current.chains)
        if script:
            self._nft(["-f", "-"], script=script)

    def project_keys(self) -> set[str]:
        """Keys of every project that has chains loaded."""
        keys: set[str] = set()
        for chain in self.read().chains:
            if chain.startswith("p_") and chain.endswith("_fwd"):
                keys.add(chain[2:-4])
        return keys

    def guard_loaded(self, tag: str) -> bool:
        """Whether the namespace holds the guard table tagged `tag` (see `nft.guard_script`)."""
        result = self.runner.run(
            [*self.command, "list", "table", nft.FAMILY, nft.GUARD_TABLE], timeout=NFT_TIMEOUT
        )
        return result.ok and f'comment "{tag}"' in result.stdout

    def load(self, script: str) -> None:
        """Apply a script as one transaction."""
        self._nft(["-f", "-"], script=script)

    def dump(self) -> str:
        """Stateless text of the table (for persistence across reboots)."""
        return self._nft(["-s", "list", "table", nft.FAMILY, nft.TABLE])


def native_command(runner: Runner, environ: Mapping[str, str]) -> list[str]:
    """`nft` when root, `sudo -n nft` when that works without a password."""
    override = environ.get("ALCA_NFT")
    if override:
        return override.split()
    if os.geteuid() == 0:
        return ["nft"]
    result = runner.run(["sudo", "-n", "nft", "--version"], timeout=10)
    if result.ok:
        return ["sudo", "-n", "nft"]
    raise RefusedError(
        "network isolation needs to manage nftables, which requires root",
        hint="run alca with sudo, allow `sudo -n nft` for your user (sudoers), or opt out "
        'knowingly with lan-access = ["*"]',
    )


HELPER_NAME = "alcatraz-network-helper"


def helper_command(engine: str, environ: Mapping[str, str]) -> list[str]:
    """Run `nft` in the engine host's namespaces through the helper container."""
    target = environ.get("ALCA_HELPER_TARGET_PID", "1")
    if not target.isdigit():
        raise UnavailableError(f"ALCA_HELPER_TARGET_PID must be a number, not {target!r}")
    return [
        engine, "exec", "-i", HELPER_NAME,
        "nsenter", "-t", target, "-m", "-u", "-n", "-i", "nft",
    ]  # fmt: skip


def firewall_for(runner: Runner, environ: Mapping[str, str], engine: str) -> Firewall:
    """The firewall for this machine: native on Linux, the helper container elsewhere."""
    import sys

    mechanism = environ.get("ALCA_FIREWALL") or ("native" if sys.platform == "linux" else "helper")
    if mechanism == "helper":
        return Firewall(runner, helper_command(engine, environ), "helper")
    if mechanism != "native":
        raise UnavailableError(
            f"unknown ALCA_FIREWALL={mechanism!r}", hint='use "native" or "helper"'
        )
    return Firewall(runner, native_command(runner, environ), "native")
