"""`alca experimental sync`: its JSON and its question, from conflicts, without Mutagen."""

from __future__ import annotations

import json

from alcatraz.commands.experimental import check_json, conflict_prompt
from alcatraz.sync.conflicts import Conflict

CONFLICT = Conflict("alca-abc-0", 1, "src/x.py", "file", "directory")


def test_check_json_keeps_the_go_tools_names() -> None:
    data = check_json([CONFLICT], "2026-01-01T00:00:00Z")
    assert json.dumps(data) == (
        '{"count": 1, "conflicts": [{"path": "src/x.py", "mount": 1, '
        '"session": "alca-abc-0", "localState": "file", "containerState": "directory", '
        '"detectedAt": "2026-01-01T00:00:00Z"}]}'
    )
    assert check_json([], "now") == {"count": 0, "conflicts": []}


def test_the_question_for_one_conflict() -> None:
    assert conflict_prompt(2, 3, CONFLICT) == [
        "[2/3] src/x.py",
        "  Local (your machine):  file",
        "  Container:             directory",
        "How to resolve?  1) Local overwrites container  2) Container overwrites local  3) Skip",
    ]
