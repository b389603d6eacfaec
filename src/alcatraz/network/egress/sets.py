"""The daemon's writes to the project's nft sets: addresses of allowed names, the live gate.

Every write is one `nft -f -` transaction (argv from the policy, never a shell) run through
a runner shaped like `alcatraz.proc.Runner` (tests pass `tests.fakes.FakeRunner` and record
scripts instead of touching the kernel). `alcatraz.proc` itself is not imported: the
resolver module is reachable from `alca run`'s imports, which must not reach the engine
layer (the "run-path" import contract); `PlainRunner` is the few lines the daemon needs. The
daemon only adds and flushes elements; the integrator's rules declare the sets.

The live gate: egress accepts require `"alca-KEY"` in `p_KEY_live`, which the daemon
refreshes every `LIVE_INTERVAL` seconds with a `LIVE_TIMEOUT` timeout, so nothing passes
within `LIVE_TIMEOUT` of the daemon dying.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from alcatraz.config.netgrammar.egress import EgressRule
from alcatraz.network.egress.policy import (
    TABLE,
    Address,
    DaemonPolicy,
    refresh_lines,
    set_elements,
    set_names,
)

LIVE_INTERVAL: Final = 5.0
LIVE_TIMEOUT: Final = 15
NFT_TIMEOUT: Final = 4.0  # twice before "ready", within resolver.READY_TIMEOUT


#: How nft words an element refused for overlapping one already in an interval set.
OVERLAP: Final = "File exists"


@dataclass(frozen=True)
class Added:
    """What became of a name's elements: how many got in, which overlap others (kept out,
    perhaps covered), which failed for another reason (nft missing, no such set...)."""

    count: int
    overlapping: list[str]
    failed: list[str]

    @property
    def lost(self) -> bool:
        """Nothing of it got in, and not for an overlap: the name cannot be let through."""
        return self.count == 0 and not self.overlapping


class Outcome(Protocol):
    """What the daemon reads of a finished command (as `alcatraz.proc.Result` has it)."""

    @property
    def returncode(self) -> int: ...
    @property
    def stderr(self) -> str: ...


class Runner(Protocol):
    """The part of `alcatraz.proc.Runner` the daemon uses."""

    def run(
        self, argv: Sequence[str], *, input: str | None = None, timeout: float | None = None
    ) -> Outcome: ...


@dataclass(frozen=True)
class PlainOutcome:
    returncode: int
    stderr: str


class PlainRunner:
    """Runs an argv (never a shell) with `input` on stdin; raises when it cannot start or
    does not finish in time, as `alcatraz.proc.SubprocessRunner` does."""

    def run(
        self, argv: Sequence[str], *, input: str | None = None, timeout: float | None = None
    ) -> PlainOutcome:
        import subprocess

        done = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
        return PlainOutcome(done.returncode, done.stderr)


class SetWriter:
    """Applies element scripts for one project's policy."""

    def __init__(self, policy: DaemonPolicy, runner: Runner, table: str = TABLE) -> None:
        self.policy = policy
        self.runner = runner
        self.table = table
        self.names = set_names(policy.key)

    def apply(self, script: str) -> str | None:
        """Run one transaction; None when it applied, else nft's complaint."""
        if not script:
            return None
        try:
            result = self.runner.run(
                [*self.policy.nft, "-f", "-"], input=script, timeout=NFT_TIMEOUT
            )
        except Exception as error:  # an nft missing or hanging must not end the daemon
            return str(error)
        if result.returncode == 0:
            return None
        return result.stderr.strip() or f"exit {result.returncode}"

    def add_addresses(
        self, rules: Sequence[EgressRule], addresses: Sequence[Address], ttl: int
    ) -> Added:
        """Add (refresh) `addresses` for the rules matching a name.

        One transaction first. nft refuses an interval element with an end inside an
        existing one (another name's range on the same address, e.g. 443 after 400-500),
        which would sink the whole transaction: then each element is tried alone, so an
        overlap loses only itself (an element inside another is covered by it anyway).
        """
        elements = set_elements(self.policy.key, rules, addresses)
        count = sum(len(items) for items in elements.values())
        script = "".join(
            refresh_lines(self.table, name, items, ttl) for name, items in elements.items()
        )
        if self.apply(script) is None:
            return Added(count, [], [])
        overlapping: list[str] = []
        failed: list[str] = []
        for name, items in elements.items():
            for item in items:
                problem = self.apply(refresh_lines(self.table, name, [item], ttl))
                if problem is not None:
                    found = overlapping if OVERLAP in problem else failed
                    found.append(f"{item} in {name}: {problem}")
        return Added(count - len(overlapping) - len(failed), overlapping, failed)

    def flush_script(self) -> str:
        names = (self.names.ea4, self.names.ea6, self.names.ep4, self.names.ep6)
        return "".join(f"flush set inet {self.table} {name}\n" for name in names)

    def flush_addresses(self) -> str | None:
        """Forget every address a previous daemon added (its policy may have changed)."""
        return self.apply(self.flush_script())

    def live_script(self) -> str:
        element = f'"{self.policy.interface}"'
        return refresh_lines(self.table, self.names.live, [element], LIVE_TIMEOUT)

    def refresh_live(self) -> str | None:
        return self.apply(self.live_script())


async def keep_live(
    writer: SetWriter, log: Callable[[str], None], interval: float = LIVE_INTERVAL
) -> None:
    """Refresh the live gate forever (a failure is logged and retried next tick)."""
    failing = False
    while True:
        problem = await asyncio.to_thread(writer.refresh_live)
        if problem is not None and not failing:
            log(f"cannot refresh the live gate: {problem}")
        failing = problem is not None
        await asyncio.sleep(interval)
