"""Helpers for the egress acceptance tests (issue 15): the probe run inside a sandbox and,
as its positive control, on the host; a truth table every test prints; the project's nft
sets as the kernel holds them; the project's config with `[network] egress` and `dns`.

Set names follow the shared design (notes: egress-design): `p_KEY_ea4` (addresses of
names allowed on every port), `p_KEY_ep4` (with protocol/port), `p_KEY_lan4` (the host's
directly connected subnets and default gateways), `p_KEY_live` (the daemon's heartbeat).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alcatraz import state as alca_state
from tests.integration.isolation_helpers import Project, sh, toml_list
from tests.lab.names import DNS4, EGRESS_NAMES, WEB4, WEB_NAME, ask

DEBIAN = "localhost/alca-test/debian:trixie"
PROBE_FILE = Path(__file__).parents[1] / "lab" / "egressprobe.py"
PROBE = PROBE_FILE.read_text()
TABLE = ("inet", "alcatraz")
#: the design's bounds for a name's addresses in the sets (the policy file may say others)
TTL_BOUNDS = (30, 3600)
#: where the host-side control finds a name the lab answers (the host's resolver does not)
LAB_ADDRESS = {name: address for name, address, _ in EGRESS_NAMES} | {WEB_NAME: WEB4}

Command = list[Any]


# --- the truth table --------------------------------------------------------------------


@dataclass
class Row:
    label: str
    expect: str  # PASS or BLOCK
    got: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.expect == self.got


@dataclass
class TruthTable:
    """Rows of (what was tried, expected, observed); controls first. `check()` prints it and
    fails the test on any row that differs, a failed control included (never a skip)."""

    title: str
    rows: list[Row] = field(default_factory=list)

    def add(self, label: str, expect: str, passed: bool, detail: str = "") -> Row:
        row = Row(label, expect, "PASS" if passed else "BLOCK", detail)
        self.rows.append(row)
        return row

    def render(self) -> str:
        width = max([len(r.label) for r in self.rows] + [20])
        lines = [f"egress truth table: {self.title}"]
        lines.append(f"     {'what':<{width}}  expect got    detail")
        for row in self.rows:
            mark = "ok  " if row.ok else "FAIL"
            detail = " ".join(row.detail.split())[:90]
            lines.append(f"  {mark} {row.label:<{width}}  {row.expect:<6} {row.got:<6} {detail}")
        failed = sum(not r.ok for r in self.rows)
        lines.append(f"  {len(self.rows)} rows, {failed} not as expected")
        return "\n".join(lines)

    def check(self) -> None:
        text = self.render()
        print("\n" + text)
        assert all(row.ok for row in self.rows), text


# --- probes -----------------------------------------------------------------------------


def describe(command: Command) -> str:
    return " ".join(str(part) for part in command)


def parse_probe(done: subprocess.CompletedProcess[str], commands: Sequence[Command]) -> list[Any]:
    """The probe's JSON results, or one failed result per command saying why none came."""
    with contextlib.suppress(ValueError, IndexError):
        results: list[Any] = json.loads(done.stdout.strip().splitlines()[-1])
        if len(results) == len(commands):
            return results
    why = f"no probe output (exit {done.returncode}): {(done.stdout + done.stderr)[-300:]}"
    return [{"cmd": c, "ok": False, "detail": why} for c in commands]


def in_sandbox(project: Project, commands: Sequence[Command], *, direct: bool = False) -> list[Any]:
    """The probe inside the sandbox: through `alca run` (what the agent does), or `direct`ly
    through `<engine> exec` when `alca run` itself is under test."""
    argv = ["python3", "-c", PROBE, json.dumps(list(commands))]
    done = project.exec_engine(argv) if direct else project.exec_alca(argv)
    return parse_probe(done, commands)


def on_host(commands: Sequence[Command]) -> list[Any]:
    done = subprocess.run(
        [sys.executable, str(PROBE_FILE), json.dumps(list(commands))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return parse_probe(done, commands)


def host_form(command: Command) -> Command:
    """The command as the host runs it: a lab name becomes the lab's address (the host's
    own resolver does not know the lab), the project's resolver becomes the lab's."""
    kind, *args = command
    if kind == "dns":
        return ["dns", DNS4 if args[0] == "resolv" else args[0], *args[1:]]
    if kind in ("tcp", "udp", "http", "tls", "alab") and args[0] in LAB_ADDRESS:
        return [kind, LAB_ADDRESS[args[0]], *args[1:]]
    return command


def controls(table: TruthTable, commands: Sequence[Command]) -> None:
    """Positive control first: every command the sandbox will try must work from the host
    (names: the lab DNS server answers them), so a BLOCK below comes from alcatraz."""
    probes = [host_form(c) for c in commands if c[0] != "resolve"]
    for command, result in zip(probes, on_host(probes), strict=True):
        table.add(f"control (host): {describe(command)}", "PASS", result["ok"], result["detail"])
    for command in commands:
        if command[0] == "resolve":
            answers = ask(DNS4, command[1])[1]
            table.add(f"control (host): lab DNS {command[1]}", "PASS", bool(answers), str(answers))


def rows(
    table: TruthTable,
    project: Project,
    cases: Sequence[tuple[Command, str]],
    *,
    direct: bool = False,
    prefix: str = "",
) -> list[Any]:
    """Run `cases` ((command, expected)) in the sandbox in order and add their rows."""
    results = in_sandbox(project, [c for c, _ in cases], direct=direct)
    for (command, expect), result in zip(cases, results, strict=True):
        table.add(f"{prefix}{describe(command)}", expect, result["ok"], result["detail"])
    return results


# --- the project's sets in the kernel ---------------------------------------------------


def set_name(project: Project, kind: str) -> str:
    return f"p_{project.key}_{kind}"


def set_elements(name: str) -> list[dict[str, Any]]:
    """Elements of a set as {"val", "timeout", "expires"} (val: address, or a list for a
    concatenation); [] when the set is missing (the failure says so elsewhere)."""
    done = sh(["nft", "-j", "list", "set", *TABLE, name])
    if done.returncode != 0:
        return []
    found: list[dict[str, Any]] = []
    for item in json.loads(done.stdout).get("nftables", []):
        for element in item.get("set", {}).get("elem", []):
            inner = element.get("elem", element) if isinstance(element, dict) else element
            if not isinstance(inner, dict):
                inner = {"val": inner}
            value = inner.get("val")
            if isinstance(value, dict) and "concat" in value:
                value = value["concat"]
            found.append(
                {"val": value, "timeout": inner.get("timeout"), "expires": inner.get("expires")}
            )
    return found


def set_exists(name: str) -> bool:
    return sh(["nft", "list", "set", *TABLE, name]).returncode == 0


def set_has(name: str, element: str) -> tuple[bool, str]:
    """Whether the kernel matches `element` in set `name` (intervals included)."""
    done = sh(["nft", "get", "element", *TABLE, name, "{", element, "}"])
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def delete_element(name: str, element: str) -> None:
    """Remove one element of this project's set (what its timeout does when it expires)."""
    done = sh(["nft", "delete", "element", *TABLE, name, "{", element, "}"])
    assert done.returncode == 0, done.stderr


def ttl_bounds(project: Project) -> tuple[int, int]:
    """(ttl_min, ttl_max) from the policy file the project's daemon runs with, else the
    design's defaults."""
    directory = alca_state.project_dir(project.ws.alca_home, project.root)
    for path in sorted(directory.glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads(path.read_text())
            return int(data["ttl_min"]), int(data["ttl_max"])
    return TTL_BOUNDS


# --- the project's configuration --------------------------------------------------------


def write_config(project: Project, egress: Sequence[str] | None) -> None:
    """The Debian test image, the lab resolver as `dns`, and `egress` (None: absent)."""
    lines = [
        f'image = "{DEBIAN}"',
        f'runtime = "{project.engine}"',
        "",
        "[network]",
        f"dns = {toml_list([DNS4])}",
    ]
    if egress is not None:
        lines.append(f"egress = {toml_list(egress)}")
    (project.root / ".alca.toml").write_text("\n".join(lines) + "\n")


def apply_config(project: Project, egress: Sequence[str] | None) -> None:
    """Write, approve and bring up (what a user does after editing the config)."""
    write_config(project, egress)
    project.up()
