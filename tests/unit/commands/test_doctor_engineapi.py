"""`alca doctor`'s engine-api check against real sockets: answering, dead, absent, remote."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from alcatraz.commands import doctor
from alcatraz.commands.doctor import engineapi
from alcatraz.commands.doctor.engineapi import check_engine_api
from alcatraz.commands.doctor.report import Check
from tests import fakes
from tests.unit.runtime.engine_server import engine_server, reply, short_dir


def test_an_answering_socket_is_the_api_path() -> None:
    with engine_server(reply("200 OK", b"OK")) as server:
        check = check_engine_api("docker", {"DOCKER_HOST": f"unix://{server.path}"})
    assert (check.name, check.status) == ("engine-api", "ok")
    assert server.path in check.summary and "API" in check.summary


def test_a_dead_socket_warns_that_run_uses_the_cli() -> None:
    with short_dir() as directory:
        path = os.path.join(directory, "podman.sock")
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(path)
        dead.close()
        check = check_engine_api("podman", {"CONTAINER_HOST": f"unix://{path}"})
    assert check.status == "warn"
    assert "does not answer" in check.summary and "podman command" in check.summary
    assert check.fix is not None and "podman.socket" in check.fix


def test_an_absent_socket_says_how_to_enable_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    check = check_engine_api("podman", {"XDG_RUNTIME_DIR": "/nonexistent/run"})
    assert check.status == "warn" and "is not there" in check.summary
    assert check.fix is not None and "systemctl --user enable --now podman.socket" in check.fix
    docker = check_engine_api("docker", {"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert docker.status == "warn" and docker.fix is not None and "DOCKER_HOST" in docker.fix


def test_a_remote_engine_keeps_the_cli() -> None:
    check = check_engine_api("docker", {"DOCKER_HOST": "ssh://me@far"})
    assert check.status == "info" and "docker command" in check.summary


@pytest.mark.parametrize("value", ["0", "off", "cli"])
def test_forced_cli_is_reported(value: str) -> None:
    check = check_engine_api("docker", {"ALCA_ENGINE_API": value})
    assert check.status == "info" and "forced" in check.summary


def test_an_unknown_value_fails_as_run_would() -> None:
    check = check_engine_api("docker", {"ALCA_ENGINE_API": "maybe\x1b[1m"})
    assert check.status == "fail" and "ALCA_ENGINE_API" in check.summary
    assert "\x1b" not in check.summary


class _Runtime:
    executable = "podman"


def test_doctor_lists_it_after_the_engines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "check_engines", lambda app, runner, config: ([], _Runtime()))
    monkeypatch.setattr(
        doctor, "check_engine_api", lambda engine, environ: Check("engine-api", "info", engine)
    )
    first = doctor.collect(fakes.project_app(tmp_path))[0]
    assert (first.name, first.summary) == (engineapi.NAME, "podman")
