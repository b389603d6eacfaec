"""The setuid guard: a seccomp profile that keeps setuid/setgid files off the host.

Pure. On a rootful engine, uid 0 in the container is uid 0 on the host, so a file the
agent makes setuid in a bind-mounted directory is a setuid-root program in the user's
tree (security plan T18). `nosuid` on the mount would not help: it stops the bit from
being honoured through that mount, not from being stored. The only per-container lever
every engine shares is seccomp, which can read a syscall's mode argument: this module
takes the engine's own default profile and changes only the calls that set a file mode.

Inside the container nothing is lost: `no-new-privileges` already stops setuid bits from
taking effect there. Programs that try to set one get EPERM (so, e.g., installing a
package that ships a setuid program fails loudly rather than half-working).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from alcatraz.config.load import Config

#: Where a syscall takes the mode that may carry S_ISUID/S_ISGID (0-based argument index).
MODE_ARGUMENT: Final[Mapping[str, int]] = {
    "chmod": 1,
    "fchmod": 1,
    "fchmodat": 2,
    "fchmodat2": 2,
    "creat": 1,
    "open": 2,
    "openat": 3,
    "mknod": 1,
    "mknodat": 2,
}
#: Calls whose mode seccomp cannot see (it sits in a struct or a ring buffer): refused
#: with ENOSYS, which makes libc and runtimes fall back to the calls above.
OPAQUE_MODE_CALLS: Final = ("openat2", "io_uring_setup", "io_uring_enter", "io_uring_register")

S_ISUID: Final = 0o4000
S_ISGID: Final = 0o2000
EPERM: Final = 1
ENOSYS: Final = 38

#: Standard places of the profile Podman and the containers tools use as their default
#: (an override in /etc first, as Podman looks them up).
DEFAULT_PROFILE_PATHS: Final = (
    "/etc/containers/seccomp.json",
    "/usr/share/containers/seccomp.json",
)


class ProfileError(ValueError):
    """The base profile is not a seccomp profile this module can extend."""


def needs_guard(mounts: Iterable[tuple[bool, bool]], platform: str = sys.platform) -> bool:
    """Whether any host directory is bind-mounted writable: `(readonly, synced)` pairs.

    Synced directories reach the host through Mutagen, which carries no setuid bits and
    writes as the user, so they need no guard; neither do read-only mounts. On macOS the
    engines' VM file sharing writes every file as the user, so a setuid bit is harmless.
    """
    if platform == "darwin":
        return False
    return any(not readonly and not synced for readonly, synced in mounts)


def config_needs_guard(config: Config) -> bool:
    """`needs_guard` for a configuration's mounts (the workdir's included)."""
    return needs_guard((m.readonly, bool(m.exclude)) for m in config.all_mounts)


def _mode_rule(name: str, index: int, action: str, *, bits: int, value: int) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "names": [name],
        "action": action,
        "args": [{"index": index, "value": bits, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ"}],
        "comment": "alcatraz setuid guard",
    }
    if action == "SCMP_ACT_ERRNO":
        rule["errnoRet"] = EPERM
    return rule


def guard_rules() -> list[dict[str, Any]]:
    """Allow a mode-setting call only when the mode has neither S_ISUID nor S_ISGID.

    The EPERM rules make the refusal explicit even under a base whose default is to allow.
    """
    rules: list[dict[str, Any]] = []
    for name, index in MODE_ARGUMENT.items():
        rules.append(_mode_rule(name, index, "SCMP_ACT_ALLOW", bits=S_ISUID | S_ISGID, value=0))
        for bit in (S_ISUID, S_ISGID):
            rules.append(_mode_rule(name, index, "SCMP_ACT_ERRNO", bits=bit, value=bit))
    rules.append(
        {
            "names": list(OPAQUE_MODE_CALLS),
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": ENOSYS,
            "comment": "alcatraz setuid guard: modes seccomp cannot inspect",
        }
    )
    return rules


def guarded_profile(base: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with every rule for the mode-setting calls replaced by `guard_rules()`.

    Every other rule, the default action and the architecture map stay as the engine's
    maintainers wrote them.
    """
    syscalls = base.get("syscalls")
    if not isinstance(base.get("defaultAction"), str) or not isinstance(syscalls, list):
        raise ProfileError("not a seccomp profile: needs 'defaultAction' and a 'syscalls' list")
    guarded = set(MODE_ARGUMENT) | set(OPAQUE_MODE_CALLS)
    kept: list[dict[str, Any]] = []
    for rule in syscalls:
        if not isinstance(rule, dict):
            raise ProfileError("not a seccomp profile: a 'syscalls' entry is not a table")
        names = rule.get("names")
        if names is None and isinstance(rule.get("name"), str):  # the old single-name form
            names = [rule["name"]]
        if not isinstance(names, list):
            raise ProfileError("not a seccomp profile: a rule has no 'names' list")
        remaining = [name for name in names if name not in guarded]
        if remaining:
            kept.append({**{k: v for k, v in rule.items() if k != "name"}, "names": remaining})
    return {**base, "syscalls": kept + guard_rules()}


def render(profile: Mapping[str, Any]) -> str:
    """Stable JSON text, so the same profile always has the same digest and file name."""
    return json.dumps(profile, indent=1, sort_keys=True) + "\n"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
