"""The workspace paths read-only inside every sandbox unless `workdir_unprotect` lifts them.

Pure data, here so that `config show` can print the defaults without importing
`alcatraz.protect`, which reads the workspace; `protect` applies them.
"""

from __future__ import annotations

from typing import Final

#: Protected by default (a trailing `/` marks a directory). See docs/security.md.
DEFAULT_PROTECTED: Final = (
    ".git/config",
    ".git/config.worktree",
    ".git/hooks/",
    ".git/worktrees/",
    ".git/modules/",
    ".envrc",
    ".vscode/",
    ".idea/",
    ".devcontainer/",
    ".alca/",
)
