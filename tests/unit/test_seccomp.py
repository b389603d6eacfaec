"""The setuid guard's profile: which rules it replaces, which it keeps, when it is needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alcatraz import seccomp
from alcatraz.runtime.base import ContainerSpec
from alcatraz.runtime.docker import DockerRuntime
from alcatraz.sandbox import drift

BASE: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 38,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
    "syscalls": [
        {"names": ["read", "chmod", "openat", "write", "openat2"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["fchmodat"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_FOWNER"]}},
        {"name": "creat", "action": "SCMP_ACT_ALLOW"},
        {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
    ],
}


def rules_for(profile: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [rule for rule in profile["syscalls"] if name in rule["names"]]


def test_mode_calls_are_allowed_only_without_setuid_or_setgid_bits() -> None:
    guarded = seccomp.guarded_profile(BASE)
    for name, index in seccomp.MODE_ARGUMENT.items():
        rules = rules_for(guarded, name)
        allows = [rule for rule in rules if rule["action"] == "SCMP_ACT_ALLOW"]
        denies = [rule for rule in rules if rule["action"] == "SCMP_ACT_ERRNO"]
        assert allows == [
            {
                "names": [name],
                "action": "SCMP_ACT_ALLOW",
                "args": [
                    {"index": index, "value": 0o6000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
                ],
                "comment": "alcatraz setuid guard",
            }
        ], name
        assert sorted(rule["args"][0]["value"] for rule in denies) == [0o2000, 0o4000], name
        assert all(rule["errnoRet"] == seccomp.EPERM for rule in denies)
        assert all(rule["args"][0]["index"] == index for rule in denies)


def test_calls_whose_mode_is_hidden_are_refused_with_enosys() -> None:
    guarded = seccomp.guarded_profile(BASE)
    for name in seccomp.OPAQUE_MODE_CALLS:
        (rule,) = rules_for(guarded, name)
        assert rule["action"] == "SCMP_ACT_ERRNO" and rule["errnoRet"] == seccomp.ENOSYS


def test_everything_else_of_the_base_is_kept() -> None:
    guarded = seccomp.guarded_profile(BASE)
    assert guarded["defaultAction"] == "SCMP_ACT_ERRNO"
    assert guarded["defaultErrnoRet"] == 38
    assert guarded["archMap"] == BASE["archMap"]
    assert rules_for(guarded, "read") == [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
    assert rules_for(guarded, "ptrace") == [BASE["syscalls"][3]]
    # A rule left with no names (fchmodat, the old single-name creat) disappears.
    assert not any(rule.get("includes") for rule in guarded["syscalls"])
    assert all("name" not in rule for rule in guarded["syscalls"])
    assert BASE["syscalls"][0]["names"] == ["read", "chmod", "openat", "write", "openat2"]


@pytest.mark.parametrize(
    "base",
    [
        {},
        {"defaultAction": "SCMP_ACT_ERRNO"},
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": ["chmod"]},
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]},
    ],
)
def test_a_base_that_is_not_a_profile_is_refused(base: dict[str, Any]) -> None:
    with pytest.raises(seccomp.ProfileError):
        seccomp.guarded_profile(base)


def test_the_installed_default_profile_can_be_guarded() -> None:
    installed = next((Path(p) for p in seccomp.DEFAULT_PROFILE_PATHS if Path(p).is_file()), None)
    if installed is None:
        pytest.skip("no containers seccomp profile on this machine")
    base = json.loads(installed.read_text())
    guarded = seccomp.guarded_profile(base)
    unguarded = [
        rule
        for rule in guarded["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW"
        and set(rule["names"]) & set(seccomp.MODE_ARGUMENT)
        and not rule.get("args")
    ]
    assert unguarded == []
    assert len(guarded["syscalls"]) > len(seccomp.guard_rules())


def test_rendering_is_stable() -> None:
    text = seccomp.render(seccomp.guarded_profile(BASE))
    assert text == seccomp.render(json.loads(text))
    assert seccomp.digest(text) == seccomp.digest(seccomp.render(seccomp.guarded_profile(BASE)))


@pytest.mark.parametrize(
    ("mounts", "platform", "expected"),
    [
        ([(False, False)], "linux", True),  # the workspace bind-mounted rw
        ([(False, True)], "linux", False),  # the workspace synced
        ([(False, True), (True, False)], "linux", False),  # synced + a ro mount
        ([(False, True), (False, False)], "linux", True),  # synced + a rw mount
        ([(False, False)], "darwin", False),  # VM file sharing writes as the user
    ],
)
def test_guard_is_needed_for_writable_bind_mounts(
    mounts: list[tuple[bool, bool]], platform: str, expected: bool
) -> None:
    assert seccomp.needs_guard(mounts, platform) is expected


def test_the_profile_goes_to_the_engine_as_a_security_option() -> None:
    spec = ContainerSpec(
        name="alca-x", image="alpine", workdir="/w", labels={}, seccomp_profile="/p/guard.json"
    )
    argv = DockerRuntime.__new__(DockerRuntime).run_argv(spec)
    assert argv[argv.index("seccomp=/p/guard.json") - 1] == "--security-opt"
    plain = DockerRuntime.__new__(DockerRuntime).run_argv(
        ContainerSpec(name="alca-x", image="alpine", workdir="/w", labels={})
    )
    assert not any(arg.startswith("seccomp=") for arg in plain)


def test_a_container_made_before_the_guard_shows_as_drift() -> None:
    assert drift.compare({"image": "a"}, {"image": "a", "setuid_guard": True}) == [
        "Setuid guard: off → on"
    ]
    assert (
        drift.compare({"image": "a", "setuid_guard": True}, {"image": "a", "setuid_guard": True})
        == []
    )
