"""`host-ca`: which CA files of the host are collected, how they reach the container spec."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alcatraz import hostca


def pem(tag: str) -> str:
    body = (tag * 64)[:64]
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def test_bundle_joins_distinct_certificates_in_order(tmp_path: Path) -> None:
    system, extra = tmp_path / "system.pem", tmp_path / "corp.pem"
    system.write_text(pem("A") + "junk\n" + pem("B"))
    extra.write_text(pem("B").replace("\n", "\r\n") + pem("C"))
    data = hostca.bundle([str(system), str(extra), str(tmp_path / "missing.pem")])
    assert hostca.certificates(data) == [
        pem("A").strip().encode(),
        pem("B").strip().encode(),
        pem("C").strip().encode(),
    ]


def test_host_sources_system_bundle_then_the_variables_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "ca-certificates.crt"
    system.write_text(pem("A"))
    corp = tmp_path / "corp.pem"
    corp.write_text(pem("C"))
    monkeypatch.setattr(hostca, "SYSTEM_BUNDLES", (str(tmp_path / "none"), str(system)))
    environ = {"NODE_EXTRA_CA_CERTS": str(corp), "SSL_CERT_FILE": str(system), "PIP_CERT": ""}
    assert hostca.host_sources(environ) == [str(system), str(corp)]


def test_write_bundle_rewrites_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "system.pem"
    system.write_text(pem("A"))
    monkeypatch.setattr(hostca, "SYSTEM_BUNDLES", (str(system),))
    state = tmp_path / "state"
    path = hostca.write_bundle(state, {})
    assert path is not None and oct(path.stat().st_mode & 0o777) == "0o644"
    inode = path.stat().st_ino
    system.write_text(pem("A") + pem("Z"))
    assert hostca.write_bundle(state, {}) == path
    assert path.stat().st_ino == inode  # a running sandbox's bind mount sees the update
    assert pem("Z").strip() in path.read_text()


def test_write_bundle_never_follows_a_planted_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "system.pem"
    system.write_text(pem("A"))
    monkeypatch.setattr(hostca, "SYSTEM_BUNDLES", (str(system),))
    state = tmp_path / "state"
    state.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    os.symlink(victim, state / hostca.BUNDLE_NAME)
    with pytest.raises(OSError):
        hostca.write_bundle(state, {})
    assert victim.read_text() == "keep me"


def test_no_bundle_when_the_host_has_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostca, "SYSTEM_BUNDLES", (str(tmp_path / "none"),))
    assert hostca.write_bundle(tmp_path, {}) is None


def test_sandbox_env_points_every_variable_at_the_bundle_unless_the_config_sets_it() -> None:
    env = hostca.sandbox_env({"PIP_CERT": object()})
    assert "PIP_CERT" not in env
    for name in ("SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO",
                 "CURL_CA_BUNDLE"):  # fmt: skip
        assert env[name] == hostca.BUNDLE_TARGET


def test_extra_authorities_compares_with_the_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "mozilla"
    store.mkdir()
    (store / "a.crt").write_text(pem("A"))
    system = tmp_path / "system.pem"
    system.write_text(pem("A") + pem("P"))
    monkeypatch.setattr(hostca, "SYSTEM_BUNDLES", (str(system),))
    monkeypatch.setattr(hostca, "DEFAULT_STORE_GLOB", str(store / "*.crt"))
    assert hostca.extra_authorities({}) == (1, [str(system)])
    system.write_text(pem("A"))
    assert hostca.extra_authorities({}) == (0, [])
