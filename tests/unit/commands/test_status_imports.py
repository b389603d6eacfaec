"""`alca status` shows the resolver without importing the resolver daemon (asyncio, ~40 ms)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import alcatraz

SRC = str(Path(alcatraz.__file__).parent.parent)


def test_describing_the_resolver_imports_no_asyncio(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.255.255.53\nnameserver not-an-address\n")
    code = (
        "import json, sys\n"
        "import alcatraz.commands.status\n"
        "from alcatraz.network import resolver\n"
        "from alcatraz.statefile import ResolverEntry\n"
        f"entry = ResolverEntry('10.0.0.1', {str(tmp_path / 'pid')!r}, '', {str(resolv)!r})\n"
        "shown = resolver.describe(entry)\n"
        "print(json.dumps([shown['upstreams'], 'asyncio' in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
    )
    upstreams, asyncio_loaded = json.loads(done.stdout)
    assert upstreams == ["10.255.255.53"]
    assert asyncio_loaded is False
