"""Queries through the API socket: the CLI's shapes, 404 as "none", the CLI as fallback."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import unquote

import pytest

from alcatraz.errors import AlcaError
from alcatraz.runtime.base import ContainerState
from alcatraz.runtime.docker import DockerRuntime
from alcatraz.runtime.engine_facts import FactsCache
from alcatraz.runtime.podman import PodmanRuntime
from tests.fakes import FakeRunner
from tests.unit.runtime.engine_server import engine_server

CONTAINER = {
    "Id": "c0ffee",
    "Name": "/alca-box",
    "State": {"Status": "running", "Pid": 42, "StartedAt": "2026-12-06T03:00:00Z"},
    "Config": {"Image": "alpine:3.21", "Labels": {"alca.project.id": "p1"}},
    "HostConfig": {"RestartPolicy": {"Name": "no"}, "Dns": ["10.0.0.1"]},
    "NetworkSettings": {"Networks": {"alca-net": {"IPAddress": "10.0.0.2"}}},
}
NETWORK = {
    "Name": "alca-net",
    "IPAM": {"Config": [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]},
    "Options": {"com.docker.network.bridge.name": "alca-net"},
    "Labels": {"alca.project.id": "p1"},
}
PODMAN_NETWORK = {
    "name": "alca-net",
    "network_interface": "podman3",
    "subnets": [{"subnet": "10.0.0.0/24", "gateway": "10.0.0.1"}],
    "dns_enabled": True,
}
LISTING = [
    {
        "Id": "c0ffee",
        "Names": ["/alca-b"],
        "State": "exited",
        "Image": "alpine",
        "Created": 1796526000,
        "Labels": {"alca.project.id": "p1", "alca.project.path": "/w"},
        "NetworkSettings": {"Networks": {"alca-net": {"IPAddress": ""}}},
    },
    {"Id": "beef", "Names": ["/alca-a"], "State": "running", "Labels": {}},
]


def routes(conn: socket.socket, request: bytes) -> None:
    """A tiny engine: the paths the queries use, 404 for anything else."""
    target = request.split(b" ", 2)[1].decode()
    answers: dict[str, object] = {
        "/_ping": "OK",
        "/containers/alca-box/json": CONTAINER,
        "/v4.3.1/libpod/containers/alca-box/json": CONTAINER,
        "/version": {"Version": "4.3.1", "ApiVersion": "1.41"},
        "/networks/alca-net": NETWORK,
        "/networks": [NETWORK],
    }
    path, _, query = target.partition("?")
    if path == "/containers/json":
        assert "all=1" in query
        assert json.loads(unquote(query.split("filters=")[1])) == {"label": ["alca.project.id"]}
        answers[path] = LISTING
    if path in answers:
        body, status = json.dumps(answers[path]).encode(), "200 OK"
    elif path.startswith(("/containers/", "/v4.3.1/libpod/containers/")):
        body, status = b'{"message": "No such container: \\u001b[2J"}', "404 Not Found"
    elif path.startswith("/networks/"):
        body, status = b'{"message": "network x not found"}', "404 Not Found"
    else:  # what Podman 4's router answers for a path it does not serve
        body, status = b"Not Found", "404 Not Found"
    if path == "/containers/broken/json":
        body, status = b'{"message": "boom\\u001b[2J"}', "500 Internal Server Error"
    conn.sendall(f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)


def through_api(runtime: DockerRuntime | PodmanRuntime, sock: str, home: Path) -> None:
    runtime.use_facts(FactsCache(home, runtime.executable, {"DOCKER_HOST": f"unix://{sock}",
                                                            "CONTAINER_HOST": f"unix://{sock}"}),
                      api=True)  # fmt: skip
    assert runtime.api is not None


def test_inspect_network_and_listing_come_from_the_socket(tmp_path: Path) -> None:
    runner = FakeRunner()  # any CLI call fails the test
    with engine_server(routes) as server:
        docker = DockerRuntime(runner)
        through_api(docker, server.path, tmp_path)
        assert docker.available()
        info = docker.inspect("alca-box")
        assert info is not None
        assert (info.name, info.state, info.pid, info.dns) == (
            "alca-box",
            ContainerState.RUNNING,
            42,
            ("10.0.0.1",),
        )
        assert info.networks == {"alca-net": "10.0.0.2"}
        assert docker.inspect("alca-gone") is None
        network = docker.network_inspect("alca-net")
        assert network is not None and network.interface == "alca-net"
        assert network.subnets == ("10.0.0.0/24",)
        assert docker.network_inspect("alca-other") is None
        assert [n.name for n in docker.networks()] == ["alca-net"]
        listed = docker.list_by_label("alca.project.id")
    assert runner.calls == []
    assert [i.name for i in listed] == ["alca-a", "alca-b"]
    assert listed[1].state is ContainerState.STOPPED
    assert listed[1].created_at == "2026-12-06T03:00:00Z"
    assert listed[1].labels["alca.project.path"] == "/w"
    assert listed[1].networks == {"alca-net": ""}


def test_podman_uses_its_native_endpoints(tmp_path: Path) -> None:
    with engine_server(routes) as server:
        podman = PodmanRuntime(FakeRunner())
        through_api(podman, server.path, tmp_path)
        info = podman.inspect("alca-box")
        requested = [r.split(b" ")[1] for r in server.requests]
    assert info is not None and info.id == "c0ffee"
    assert requested == [b"/version", b"/v4.3.1/libpod/containers/alca-box/json"]
    facts = podman.facts
    assert facts is not None and facts.get("libpod_version") == "4.3.1"  # asked once


def test_a_404_the_engine_did_not_explain_falls_back_to_the_cli(tmp_path: Path) -> None:
    """A bare 404 (a path this engine does not serve) must not read as "no such network"."""
    runner = FakeRunner().on("podman", "network", "inspect", out=json.dumps([PODMAN_NETWORK]))
    with engine_server(routes) as server:
        podman = PodmanRuntime(runner)
        through_api(podman, server.path, tmp_path)
        network = podman.network_inspect("alca-net")
    assert network is not None and network.interface == "podman3" and network.dns_enabled
    assert podman.api is None
    assert runner.calls[0][:3] == ("podman", "network", "inspect")


def test_an_engine_error_is_printable_and_not_a_fallback(tmp_path: Path) -> None:
    with engine_server(routes) as server:
        docker = DockerRuntime(FakeRunner())
        through_api(docker, server.path, tmp_path)
        with pytest.raises(AlcaError) as caught:
            docker.inspect("broken")
    assert "boom" in caught.value.message and "\x1b" not in caught.value.message


def test_a_socket_that_stops_answering_falls_back_to_the_cli(tmp_path: Path) -> None:
    runner = FakeRunner().on("docker", "version", out="20.10\n")
    runner.on("docker", "container", "inspect", out=json.dumps([CONTAINER]))
    with engine_server(routes) as server:
        docker = DockerRuntime(runner)
        through_api(docker, server.path, tmp_path)
    # The server is gone (a daemon that stopped): the ping fails, the CLI answers.
    assert docker.available()
    assert docker.api is None
    info = docker.inspect("alca-box")
    assert info is not None and info.pid == 42
    assert [c[:3] for c in runner.calls] == [
        ("docker", "version", "--format"),
        ("docker", "container", "inspect"),
    ]


def test_a_query_that_cannot_connect_falls_back_to_the_cli(tmp_path: Path) -> None:
    runner = FakeRunner().on("docker", "container", "inspect", out=json.dumps([CONTAINER]))
    with engine_server(routes) as server:
        docker = DockerRuntime(runner)
        through_api(docker, server.path, tmp_path)
    info = docker.inspect("alca-box")
    assert info is not None and docker.api is None
    assert runner.calls[0][:3] == ("docker", "container", "inspect")
