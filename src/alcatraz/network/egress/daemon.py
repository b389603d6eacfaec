"""The guard side of the project's resolver, switched on by `dnsproxy --policy PATH`.

`dnsproxy` stays the relay; this module is what the policy adds to it: the DNS filter
(`Daemon.answer` wraps each forward), the socket mark, the live gate and, when the name
checker is installed, the checker. It never imports `dnsproxy` (that one calls in here).

Order matters for the sandbox: an allowed name's addresses are in the nft sets BEFORE its
answer leaves, so the first connection after the lookup already passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from alcatraz.config.netgrammar.egress import EgressRule
from alcatraz.network.egress import hostlan
from alcatraz.network.egress.dnsfilter import (
    answer_addresses,
    formerr,
    nxdomain,
    parse_query,
    servfail,
)
from alcatraz.network.egress.events import EventLog
from alcatraz.network.egress.policy import TABLE, DaemonPolicy, PolicyError, rules_for_name
from alcatraz.network.egress.sets import PlainRunner, Runner, SetWriter, keep_live
from alcatraz.printable import printable_lines

CHECKER_MODULE = "alcatraz.network.egress.checker"
#: Seconds between looks at the host's routes (a /proc read, about a millisecond).
HOST_LAN_INTERVAL = 2.0
MAX_POLICY = 1 << 20


def log_to_stderr(text: str) -> None:
    """One line to the daemon's log file (its stderr), made printable."""
    with contextlib.suppress(OSError):
        os.write(2, (printable_lines(text) + "\n").encode())


@dataclass
class Daemon:
    """One project's policy and the writers that enforce it."""

    policy: DaemonPolicy
    rules: tuple[EgressRule, ...] | None
    writer: SetWriter
    events: EventLog
    log: Callable[[str], None] = log_to_stderr

    @property
    def mark(self) -> int:
        return self.policy.mark

    def prepare(self) -> None:
        """Before serving: forget a previous daemon's addresses, open the live gate."""
        if self.rules is not None:
            problem = self.writer.flush_addresses()
            if problem is not None:
                self.log(f"cannot flush the address sets: {problem}")
        problem = self.writer.refresh_live()
        if problem is not None:
            self.log(f"cannot open the live gate: {problem}")

    async def answer(
        self, query: bytes, forward: Callable[[], Awaitable[bytes | None]]
    ) -> bytes | None:
        """The reply to `query`: refused locally, or forwarded with its addresses let in."""
        if self.rules is None:
            return await forward()
        question = parse_query(query)
        if question is None:
            return formerr(query)
        matching = rules_for_name(self.rules, question.name)
        if not matching:
            self.events.record("dns-refused", name=question.name, qtype=question.qtype)
            return nxdomain(question)
        reply = await forward()
        if reply is None:
            return None
        addresses, ttl = answer_addresses(reply)
        if not addresses or ttl is None:
            return reply
        ttl = self.policy.clamp_ttl(ttl)
        added = await asyncio.to_thread(self.writer.add_addresses, matching, addresses, ttl)
        for problem in added.overlapping + added.failed:
            self.log(f"cannot let {question.name} in: {problem}")
        if added.lost:
            return servfail(question)  # nothing got in: say so rather than fail later
        shown = [str(address) for address in addresses]
        self.events.record("dns-allowed", name=question.name, addresses=shown, ttl=ttl)
        return reply

    async def run_extras(self) -> None:
        """What runs beside the DNS service until cancelled: the live gate, the checker.
        If either fails, the daemon stops (`dnsproxy.serve`): the gate closes behind it."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(keep_live(self.writer, self.log))
                group.create_task(self._keep_host_lan())
                if self.rules is not None:
                    group.create_task(self._serve_checker(self.rules))
        except Exception as error:
            self.log(f"the guard daemon stops: {error!r}")
            raise

    async def _keep_host_lan(self) -> None:
        """Keep the host-LAN sets equal to the host's LANs as they are now: a laptop joins
        another network, a VPN comes up, a cloud VM gets a second interface."""
        known: hostlan.HostLan | None = None
        failing = False
        while True:
            now = await asyncio.to_thread(hostlan.current)
            if hostlan.changed(known, now):
                script = hostlan.lan_script(f"inet {TABLE}", self.policy.key, now)
                problem = await asyncio.to_thread(self.writer.apply, script)
                if problem is None:
                    known = now
                elif not failing:
                    self.log(f"cannot update the host-LAN sets: {problem}")
                failing = problem is not None
            await asyncio.sleep(HOST_LAN_INTERVAL)

    async def _serve_checker(self, rules: tuple[EgressRule, ...]) -> None:
        # INTEGRATION POINT (issue 15, helper "egcheck"): the name checker lives in
        # network/egress/checker.py, written in parallel; it is looked up by name so this
        # branch works with or without it. Replace by a static import once it is merged.
        try:
            checker = importlib.import_module(CHECKER_MODULE)
        except ModuleNotFoundError:
            self.log("the name checker is not installed: TCP to allowed names will not pass")
            return
        server = await checker.serve_checker(self.policy, rules, self.events)
        async with server:
            await server.serve_forever()


def load(path: str, runner: Runner | None = None) -> Daemon:
    """The daemon for the policy file at `path` (PolicyError, OSError when unusable)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        data = os.read(fd, MAX_POLICY + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_POLICY:
        raise PolicyError("the policy file is too large")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError("the policy file is not UTF-8") from None
    policy = DaemonPolicy.from_json(text)
    return Daemon(
        policy=policy,
        rules=policy.rules(),
        writer=SetWriter(policy, runner or PlainRunner()),
        events=EventLog(policy.events),
    )
