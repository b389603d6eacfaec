"""No module in src/alcatraz over 400 lines, no function over 60 (def line to last line).

An exception goes in `ALLOWED` with why it is there (none is, since issue 14); the list
can only shrink: a listed entry that is back within the limit fails too, so whoever
shortens it also strikes it off. Import cycles are import-linter's job (test_import_contracts.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "alcatraz"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

#: Exceptions, keyed by module path under src/alcatraz ("config/load.py")
#: or by module path and qualified function name ("config/load.py:_Resolver.references").
ALLOWED: dict[str, str] = {}


def functions(tree: ast.AST, prefix: str = "") -> list[tuple[str, int]]:
    """(qualified name, lines from `def` to the last line) of every function, nested too."""
    found: list[tuple[str, int]] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = prefix + node.name
            found.append((name, (node.end_lineno or node.lineno) - node.lineno + 1))
            found += functions(node, name + ".")
        elif isinstance(node, ast.ClassDef):
            found += functions(node, prefix + node.name + ".")
        else:
            found += functions(node, prefix)
    return found


def offenders_in(module: str, source: str) -> dict[str, str]:
    """What in `source` (the module at `module`) is over a limit, with its length."""
    over: dict[str, str] = {}
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        over[module] = f"{lines} lines (at most {MAX_MODULE_LINES})"
    for name, length in functions(ast.parse(source)):
        if length > MAX_FUNCTION_LINES:
            over[f"{module}:{name}"] = f"{length} lines (at most {MAX_FUNCTION_LINES})"
    return over


def offenders() -> dict[str, str]:
    over: dict[str, str] = {}
    for path in sorted(SRC.rglob("*.py")):
        over.update(offenders_in(path.relative_to(SRC).as_posix(), path.read_text("utf-8")))
    return over


def test_no_module_or_function_is_over_the_limit_unless_allowed() -> None:
    new = {key: length for key, length in offenders().items() if key not in ALLOWED}
    assert not new, (
        "over the size limit (split it; do not add it to ALLOWED without a reason):\n"
        + "\n".join(f"  {key}: {length}" for key, length in new.items())
    )


def test_every_allowed_entry_is_still_an_offender() -> None:
    """The allow-list only shrinks: an entry back within the limit must be struck off."""
    gone = sorted(set(ALLOWED) - set(offenders()))
    assert not gone, "within the limit now (or renamed): remove from ALLOWED: " + ", ".join(gone)


def test_the_measure_counts_from_def_to_last_line() -> None:
    """The check can fail: 61 lines from `def` are too many, 60 are not, nested ones count."""
    body, nested = "    x = 1\n", "            x = 1\n"
    source = (
        "@decorator\n"
        "def long():\n" + body * 60 + "def fits():\n" + body * 59 + "class C:\n"
        "    def method(self):\n"
        "        def inner():\n" + nested * 60
    )
    over = offenders_in("m.py", source)
    assert set(over) == {"m.py:long", "m.py:C.method", "m.py:C.method.inner"}
    assert over["m.py:long"] == "61 lines (at most 60)"
    assert "m.py" not in offenders_in("m.py", "x = 1\n" * MAX_MODULE_LINES)
    assert "m.py" in offenders_in("m.py", "x = 1\n" * (MAX_MODULE_LINES + 1))
