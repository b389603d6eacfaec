"""The daemon's nft writes: one `nft -f -` transaction each, argv from the policy."""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess

from alcatraz.config.netgrammar.egress import EgressRule
from alcatraz.network.egress.sets import LIVE_TIMEOUT, Added, SetWriter, keep_live
from alcatraz.proc import Result
from tests.fakes import FakeRunner
from tests.unit.network.egress.test_policy import policy

A = ipaddress.ip_address("203.0.113.7")
B = ipaddress.ip_address("203.0.113.8")
WEB = EgressRule("a.test", False, None, ("tcp",), (443, 443))


def writer(runner: FakeRunner) -> SetWriter:
    return SetWriter(policy(nft=("/usr/sbin/nft", "--check-later")), runner)


def test_addresses_go_in_one_transaction_through_the_policys_nft() -> None:
    runner = FakeRunner().on("/usr/sbin/nft")
    assert writer(runner).add_addresses([WEB], [A, B], 60) == Added(2, [], [])
    assert runner.calls == [("/usr/sbin/nft", "--check-later", "-f", "-")]
    (script,) = runner.inputs
    assert script is not None
    assert "203.0.113.7 . tcp . 443 timeout 60s, 203.0.113.8 . tcp . 443 timeout 60s" in script


def test_a_refused_transaction_is_retried_element_by_element() -> None:
    def answer(argv: tuple[str, ...]) -> Result:
        script = runner.inputs[-1] or ""
        whole = "203.0.113.8" in script and "203.0.113.7" in script
        refused = whole or "203.0.113.8" in script
        return Result(argv, 1 if refused else 0, "", "File exists" if refused else "")

    runner = FakeRunner(answer)
    added = writer(runner).add_addresses([WEB], [A, B], 60)
    assert len(runner.calls) == 3 and added.count == 1 and not added.failed and not added.lost
    (overlap,) = added.overlapping
    assert "203.0.113.8" in overlap and "File exists" in overlap


def test_elements_lost_for_another_reason_than_an_overlap() -> None:
    runner = FakeRunner().on("/usr/sbin/nft", rc=1, err="No such file or directory")
    added = writer(runner).add_addresses([WEB], [A], 60)
    assert added.count == 0 and len(added.failed) == 1 and added.lost


def test_nft_missing_or_hanging_is_a_problem_not_a_crash() -> None:
    runner = FakeRunner().raises("/usr/sbin/nft", exc=subprocess.TimeoutExpired("nft", 10))
    assert writer(runner).refresh_live() is not None
    assert writer(FakeRunner()).apply("") is None  # nothing to do: nothing run


def test_flush_and_live_scripts() -> None:
    runner = FakeRunner().on("/usr/sbin/nft")
    sets = writer(runner)
    assert sets.flush_addresses() is None
    assert runner.inputs[-1] == "".join(
        f"flush set inet alcatraz p_0123456789_{name}\n" for name in ("ea4", "ea6", "ep4", "ep6")
    )
    assert sets.refresh_live() is None
    live = "inet alcatraz p_0123456789_live"
    add = f'add element {live} {{ "alca-0123456789" timeout {LIVE_TIMEOUT}s }}\n'
    assert runner.inputs[-1] == add + f'delete element {live} {{ "alca-0123456789" }}\n' + add


def test_the_live_gate_is_refreshed_on_every_tick_and_a_failure_logged_once() -> None:
    runner = FakeRunner().on("/usr/sbin/nft", rc=1, err="no such set")
    logged: list[str] = []

    async def ticks() -> None:
        task = asyncio.create_task(keep_live(writer(runner), logged.append, interval=0.01))
        await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(ticks())
    assert len(runner.calls) >= 3
    assert logged == ["cannot refresh the live gate: no such set"]
