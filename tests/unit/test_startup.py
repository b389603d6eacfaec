"""`alca run` is the hot path: guard what it imports, in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = {
    "argparse",
    "pathlib",
    "subprocess",
    "tomllib",
    "msgspec",
    "rich",
    "tomlkit",
    "dataclasses",
    "inspect",
    "re",
    "shlex",
    "hashlib",  # OpenSSL (~3 ms): state hashes with the builtin SHA-256
}


def _modules_after(code: str) -> set[str]:
    probe = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_run_path_imports_nothing_heavy() -> None:
    loaded = _modules_after("import alcatraz.cli, alcatraz.sandbox.enter")
    top_level = {name.split(".")[0] for name in loaded}
    assert not (HEAVY & top_level), sorted(HEAVY & top_level)
    assert len(loaded) < 40, sorted(loaded)


def test_the_engine_api_exec_adds_only_its_own_modules() -> None:
    """`alca run` over the engine's socket loads the client on top of the run path: no
    `socket` (its enums and `selectors`), no `http.client`, no `urllib`, only `_socket`."""
    base = _modules_after("import alcatraz.cli, alcatraz.sandbox.enter")
    with_api = _modules_after(
        "import alcatraz.cli, alcatraz.sandbox.enter, alcatraz.runtime.engine_exec"
    )
    own = {"alcatraz.runtime", "alcatraz.runtime.engine_api", "alcatraz.runtime.engine_exec"}
    assert own <= with_api - base <= own | {"_socket", "select", "time"}
    assert not {"socket", "selectors", "http", "urllib", "typing"} & (with_api - base)


def test_version_is_a_literal_not_metadata() -> None:
    loaded = _modules_after("import alcatraz; alcatraz.__version__")
    assert "importlib.metadata" not in loaded


def test_the_netlink_rule_check_adds_only_its_own_module() -> None:
    """`alca run`'s check of the project's chain as root: `_socket` and `struct`, no `socket`."""
    base = _modules_after("import alcatraz.cli, alcatraz.sandbox.enter")
    with_check = _modules_after(
        "import alcatraz.cli, alcatraz.sandbox.enter, alcatraz.network.nlcheck"
    )
    assert "alcatraz.network.nlcheck" in with_check - base
    assert with_check - base <= {"alcatraz.network.nlcheck", "_socket", "struct", "_struct"}
