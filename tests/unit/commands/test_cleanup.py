"""`alca cleanup`'s listing, rendered from a typed report without an engine."""

from __future__ import annotations

from typing import cast

from alcatraz.commands.cleanup import CleanupReport, Orphan, OrphanNetwork, render
from alcatraz.runtime.base import (
    LABEL_PROJECT_PATH,
    ContainerInfo,
    ContainerState,
    NetworkInfo,
    Runtime,
)


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name


DOCKER = cast(Runtime, _Named("docker"))
PODMAN = cast(Runtime, _Named("podman"))


def container(name: str, networks: dict[str, str], **labels: str) -> ContainerInfo:
    return ContainerInfo(
        "id", name, ContainerState.STOPPED, "img", "", "", labels, networks=networks
    )


def network(name: str) -> NetworkInfo:
    return NetworkInfo(name, "", (), ())


def test_containers_then_the_networks_no_orphan_container_uses() -> None:
    report = CleanupReport(
        (
            Orphan(
                DOCKER,
                container("alca-a", {"alca-net-a": ""}, **{LABEL_PROJECT_PATH: "/p/a"}),
                "project directory does not exist",
            ),
            Orphan(PODMAN, container("alca-\x1bb", {}), "no project path label"),
        ),
        (
            OrphanNetwork(DOCKER, network("alca-net-a"), "state file does not exist"),
            OrphanNetwork(PODMAN, network("alca-net-c"), "project ID mismatch"),
        ),
    )
    assert render(report) == [
        "Found 2 orphan container(s):",
        "  [1] alca-a",
        "      Path: /p/a",
        "      Reason: project directory does not exist",
        "      Engine: docker",
        "  [2] alca-\\x1bb",
        "      Path: (unknown)",
        "      Reason: no project path label",
        "      Engine: podman",
        "",
        "Found 1 orphan network(s) without a container:",
        "  - alca-net-c (podman): project ID mismatch",
        "",
    ]
    assert [n.network.name for n in report.networks_alone] == ["alca-net-c"]
    assert not report.empty


def test_nothing_to_list() -> None:
    report = CleanupReport((), ())
    assert report.empty and render(report) == []
