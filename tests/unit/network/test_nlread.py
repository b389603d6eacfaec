"""Reading one project's nftables objects over netlink (kernel replies built by hand here;
tests/integration/test_nlread.py compares with `nft -j` on a real table)."""

from __future__ import annotations

import struct
from collections.abc import Iterable

import pytest

from alcatraz.network import nft, nlread
from alcatraz.network.firewall import DISPATCH_MAPS, Firewall
from alcatraz.network.tablestate import TableState
from tests.fakes import FakeRunner

KEY = "abc123def0"
FWD, INP, NAT = nft.chain_names(KEY)
TAG = f"alcatraz {KEY} 0123456789abcdef"


def attr(kind: int, payload: bytes, *, nested: bool = False) -> bytes:
    head = struct.pack("=HH", 4 + len(payload), kind | (0x8000 if nested else 0))
    return head + payload + b"\0" * (-len(payload) % 4)


def nest(kind: int, *parts: bytes) -> bytes:
    return attr(kind, b"".join(parts), nested=True)


def text(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def expression(name: str, *data: bytes) -> bytes:
    return nest(1, text(1, name), nest(2, *data))


def counter(packets: int) -> bytes:
    return expression(
        "counter", attr(1, struct.pack(">Q", packets * 60)), attr(2, struct.pack(">Q", packets))
    )


def verdict(code: int, chain: str = "") -> bytes:
    inner = [attr(1, struct.pack(">i", code))] + ([text(2, chain)] if chain else [])
    return nest(2, *inner)  # NFTA_DATA_VERDICT


def immediate(code: int) -> bytes:
    return expression("immediate", attr(1, struct.pack(">I", 0)), nest(2, verdict(code)))


def rule(chain: str, expressions: Iterable[bytes], comment: str | None = None) -> bytes:
    parts = [text(1, "alcatraz"), text(2, chain), nest(4, *expressions)]
    if comment is not None:
        value = comment.encode() + b"\0"
        parts.append(attr(7, bytes([0, len(value)]) + value))
    return b"".join(parts)


def element(key: bytes, *extra: bytes) -> bytes:
    return nest(1, nest(1, attr(1, key)), *extra)


def elements(*items: bytes) -> bytes:
    return text(1, "alcatraz") + text(2, "set") + nest(3, *items)


def ifname(name: str) -> bytes:
    return name.encode().ljust(16, b"\0")


class FakeLink:
    """Answers `_Socket.ask` from a table: (kind, object name) -> payloads."""

    def __init__(self, answers: dict[tuple[int, str], list[bytes]]) -> None:
        self.answers = answers
        self.asked: list[tuple[int, str, bool]] = []

    def ask(self, kind: int, payload: bytes, *, dump: bool) -> list[bytes]:
        found = nlread.attributes(payload)
        if kind == 13 and not dump:  # one element, asked by key: answered from the dump
            key = nlread.attributes(nlread.attributes(nlread.attributes(found[3][0])[1][0])[1][0])
            name = found[2][0].split(b"\0")[0].decode()
            self.asked.append((kind, name, dump))
            wanted = key[1][0]
            return [self._only(reply, wanted) for reply in self.answers.get((kind, name), [])]
        names = [v.split(b"\0")[0].decode() for k in sorted(found) for v in found[k]]
        name = names[-1]
        self.asked.append((kind, name, dump))
        return self.answers.get((kind, name), [])

    @staticmethod
    def _only(reply: bytes, wanted: bytes) -> bytes:
        items = nlread.attributes(nlread.attributes(reply)[3][0]).get(1, [])
        kept = [i for i in items if nlread.attributes(nlread.attributes(i)[1][0])[1][0] == wanted]
        return elements(*(nest(1, i) for i in kept))

    def close(self) -> None:
        pass


def loaded(
    monkeypatch: pytest.MonkeyPatch, answers: dict[tuple[int, str], list[bytes]]
) -> FakeLink:
    link = FakeLink(answers)
    monkeypatch.setattr(nlread, "_Socket", lambda: link)
    return link


def project_answers(*, fwd_rules: list[bytes] | None = None) -> dict[tuple[int, str], list[bytes]]:
    drop_rule = rule(FWD, [counter(5), immediate(0)])
    accept_rule = rule(FWD, [counter(9), immediate(1)], TAG)
    dispatch = elements(
        element(ifname("alca-" + KEY), nest(2, verdict(-3, FWD))),
        element(ifname("alca-other"), nest(2, verdict(-3, "p_other_fwd"))),
    )
    seen = elements(
        element(bytes([10, 0, 0, 7]), nest(7, counter(3)[4:])),
        element(bytes(15) + b"\1", nest(11, counter(2))),
    )
    return {
        (1, "alcatraz"): [b"table"],
        (4, FWD): [b"chain"],
        (4, INP): [b"chain"],
        (4, NAT): [b"chain"],
        (7, FWD): fwd_rules if fwd_rules is not None else [drop_rule, accept_rule],
        (7, INP): [rule(INP, [immediate(1)], TAG), rule(INP, [counter(4), immediate(0)])],
        (13, "fwd_dispatch"): [dispatch],
        (13, "p_" + KEY + "_seen4"): [seen],
    }


def test_reads_tags_drop_counters_dispatch_and_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    link = loaded(monkeypatch, project_answers())
    state = nlread.read_objects("alcatraz", nft.chain_names(KEY), DISPATCH_MAPS, nft.seen_sets(KEY))
    assert state.exists
    assert state.tags == {FWD: TAG, INP: TAG}
    assert state.counters == {FWD: 5, INP: 4}  # only rules that drop count
    assert {FWD, INP, NAT} <= state.chains
    assert state.dispatch["fwd_dispatch"] == {"alca-" + KEY: FWD, "alca-other": "p_other_fwd"}
    assert state.dispatch["in_dispatch"] == {}
    assert state.seen[f"p_{KEY}_seen4"] == [("10.0.0.7", 3), ("::1", 2)]
    # Only the project's chains and the named maps and sets were asked for: never a table dump.
    asked = {name for _, name, _ in link.asked}
    assert asked <= {"alcatraz", FWD, INP, NAT, *DISPATCH_MAPS, *nft.seen_sets(KEY)}


def test_a_missing_table_is_reported_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded(monkeypatch, {})
    assert nlread.read_objects("alcatraz", [FWD], DISPATCH_MAPS, ()) == TableState(exists=False)


def test_a_flushed_chain_has_no_tag_and_a_deleted_one_is_not_listed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = project_answers(fwd_rules=[])
    del answers[(4, NAT)]
    loaded(monkeypatch, answers)
    state = nlread.read_objects("alcatraz", nft.chain_names(KEY), DISPATCH_MAPS, ())
    assert FWD in state.chains and FWD not in state.tags
    assert NAT not in state.chains


def test_verify_accepts_the_projects_objects_and_catches_a_flushed_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`Firewall.verify` needs only the project's part of the table."""
    import ipaddress

    from alcatraz.network.plan import Policy, ProjectNetwork

    subnet = ipaddress.IPv4Network("10.213.7.0/24")
    network = ProjectNetwork("alca-" + KEY, "alca-" + KEY, subnet, next(subnet.hosts()))
    policy = Policy(KEY, network, False, (), None)
    tag = f"alcatraz {KEY} {nft.policy_digest(policy)}"
    answers = project_answers(fwd_rules=[rule(FWD, [immediate(1)], tag)])
    answers[(7, INP)] = [rule(INP, [immediate(1)], tag)]
    for map_name, chain in zip(DISPATCH_MAPS, (FWD, INP, NAT), strict=True):
        answers[(13, map_name)] = [
            elements(element(ifname("alca-" + KEY), nest(2, verdict(-3, chain))))
        ]
    loaded(monkeypatch, answers)
    read = lambda: nlread.read_objects("alcatraz", nft.chain_names(KEY), DISPATCH_MAPS, ())  # noqa: E731
    fw = Firewall(FakeRunner())
    assert fw.verify(policy, read())
    answers[(7, INP)] = []  # `nft flush chain inet alcatraz p_<key>_in`
    assert not fw.verify(policy, read())
    answers[(7, INP)] = [rule(INP, [immediate(1)], tag.replace(tag[-4:], "ffff"))]  # edited
    assert not fw.verify(policy, read())


def test_malformed_attributes_stop_instead_of_raising() -> None:
    assert nlread.attributes(b"\x03\x00\x01\x00garbage") == {}
    assert nlread.attributes(struct.pack("=HH", 200, 1) + b"short") == {}


def test_read_project_falls_back_to_nft_when_netlink_cannot_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse() -> object:
        raise nlread.Unreadable("no permission")

    monkeypatch.setattr(nlread, "_Socket", refuse)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    runner = FakeRunner().on("nft", "-j", "list", "table", out='{"nftables": []}')
    state = Firewall(runner).read_project(KEY)
    assert state.exists and runner.calls == [("nft", "-j", "list", "table", "inet", "alcatraz")]


def test_read_project_never_uses_netlink_through_sudo_or_the_helper(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def forbidden() -> object:
        raise AssertionError("netlink asked")

    monkeypatch.setattr(nlread, "_Socket", forbidden)
    runner = FakeRunner().on("sudo", "-n", "nft", "-j", out='{"nftables": []}')
    assert Firewall(runner, ["sudo", "-n", "nft"]).read_project(KEY).exists


class FakeNetlink:
    """A socket that answers each request with scripted datagrams (seq filled in)."""

    def __init__(self, answers: list[list[tuple[int, int, bytes]]]) -> None:
        self.answers = answers  # per request: (type, flags, payload) messages
        self.sent = 0
        self.seq = 0

    def send(self, data: bytes) -> int:
        self.seq = struct.unpack_from("=IHHII", data)[3]
        self.sent += 1
        return len(data)

    def recv(self, _size: int) -> bytes:
        out = b""
        for kind, flags, payload in self.answers.pop(0):
            out += struct.pack("=IHHII", 16 + len(payload), kind, flags, self.seq, 0) + payload
        return out


def linked(answers: list[list[tuple[int, int, bytes]]]) -> tuple[nlread._Socket, FakeNetlink]:
    link = nlread._Socket.__new__(nlread._Socket)
    fake = FakeNetlink(answers)
    link.sock = fake  # type: ignore[assignment]
    link.seq = 0
    return link, fake


RULE = (0x0A06, 0x2, b"\x01\x00\x00\x00" + b"rule")  # NEWRULE, NLM_F_MULTI
DONE = (3, 0x2, struct.pack("=i", 0))


def test_an_interrupted_dump_is_asked_again() -> None:
    interrupted = (RULE[0], RULE[1] | 0x10, RULE[2])  # NLM_F_DUMP_INTR
    link, fake = linked([[interrupted, DONE], [RULE, DONE]])
    assert link.ask(7, b"", dump=True) == [b"rule"]
    assert fake.sent == 2


def test_a_dump_that_keeps_being_interrupted_is_unreadable() -> None:
    interrupted = (RULE[0], RULE[1] | 0x10, RULE[2])
    link, _ = linked([[interrupted, DONE]] * 3)
    with pytest.raises(nlread.Unreadable, match="kept changing"):
        link.ask(7, b"", dump=True)


def test_kernel_errors() -> None:
    link, _ = linked([[(2, 0, struct.pack("=i", -2) + bytes(16))]])  # ENOENT: nothing there
    assert link.ask(1, b"", dump=False) == []
    link, _ = linked([[(2, 0, struct.pack("=i", -1) + bytes(16))]])  # EPERM: use nft
    with pytest.raises(nlread.Unreadable, match="refused"):
        link.ask(1, b"", dump=False)


def test_with_an_interface_each_map_is_asked_for_that_bridge_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    link = loaded(monkeypatch, project_answers())
    state = nlread.read_objects(
        "alcatraz", nft.chain_names(KEY), DISPATCH_MAPS, (), interface="alca-" + KEY
    )
    assert state.dispatch["fwd_dispatch"] == {"alca-" + KEY: FWD}  # not alca-other
    assert all(not dump for kind, _, dump in link.asked if kind == 13)
