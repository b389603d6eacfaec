#!/usr/bin/env python3
"""Regenerate docs/config-reference.md from the JSON Schema of `.alca.toml`.

    python scripts/gen-config-reference.py           # write the page
    python scripts/gen-config-reference.py --check   # exit 1 if it is out of date
    python scripts/gen-config-reference.py --stdout  # print it

Uses this checkout's `src/` (not an installed alcatraz), so the page always matches the
model in the tree; the same as `python -m alcatraz.config.reference`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from alcatraz.config.reference import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["--root", str(ROOT), *sys.argv[1:]]))
