"""Read-only engine queries through the local API socket, in the CLI's own JSON shapes.

Why: a `docker`/`podman` CLI query costs 20-110 ms of process start; the same question on
the socket takes about a millisecond. Docker's API returns exactly what `docker inspect`
prints; Podman's `/libpod/` endpoints return what `podman inspect` prints, so the parsers in
`cli_output` serve both paths and `CliRuntime` stays the one implementation callers see.
`ApiUnavailable` (nothing answered) lets the caller fall back to the CLI; an engine error is
an `AlcaError` with the engine's words made printable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from alcatraz.errors import AlcaError
from alcatraz.printable import printable_lines
from alcatraz.proc import log_request
from alcatraz.runtime import engine_api
from alcatraz.runtime.base import ContainerInfo, ContainerState
from alcatraz.runtime.engine_api import ApiError, quote_segment

__all__ = ["ApiQueries"]

QUERY_TIMEOUT = 60.0


class ApiQueries:
    """GET requests on one engine's socket; `libpod` selects Podman's native endpoints."""

    def __init__(self, socket_path: str, *, libpod: bool) -> None:
        self.socket_path = socket_path
        self.prefix = "/libpod" if libpod else ""

    def _get(self, path: str) -> Any:
        log_request(f"GET {path} via {self.socket_path}")
        return engine_api.request(self.socket_path, "GET", path, timeout=QUERY_TIMEOUT)

    def _get_or_none(self, path: str, what: str) -> Any:
        """The reply, None for a 404, `AlcaError` for any other engine error."""
        try:
            return self._get(path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise AlcaError(
                f"the engine refused {what} ({error.status}): {printable_lines(error.message)}"
            ) from None

    def ping(self) -> bool:
        """Whether the engine answers on the socket (about a millisecond)."""
        log_request(f"GET /_ping via {self.socket_path}")
        return engine_api.ping(self.socket_path)

    def container(self, name: str) -> dict[str, Any] | None:
        """`container inspect NAME` as one JSON object, or None when there is none."""
        reply = self._get_or_none(f"{self.prefix}/containers/{quote_segment(name)}/json", name)
        return reply if isinstance(reply, dict) else None

    def network(self, name: str) -> dict[str, Any] | None:
        """`network inspect NAME` as one JSON object, or None when there is none."""
        suffix = "/json" if self.prefix else ""  # Docker: /networks/NAME; Podman: .../json
        reply = self._get_or_none(f"{self.prefix}/networks/{quote_segment(name)}{suffix}", name)
        if isinstance(reply, list):  # some Podman versions wrap it in a list
            reply = reply[0] if reply else None
        return reply if isinstance(reply, dict) else None

    def networks(self) -> list[dict[str, Any]]:
        """Every network, each as `network inspect` shows it, in one request."""
        reply = self._get_or_none(
            "/libpod/networks/json" if self.prefix else "/networks", "the network listing"
        )
        return [item for item in reply if isinstance(item, dict)] if isinstance(reply, list) else []

    def containers_by_label(
        self, label: str, states: Mapping[str, ContainerState]
    ) -> list[ContainerInfo]:
        """Every container (any state) with `label` ("key" or "key=value"), in one request.

        From the listing alone (no inspect per container, so 200 projects cost one call):
        id, name, state, image, labels, networks and the creation time (to the second).
        """
        filters = quote_query(json.dumps({"label": [label]}))
        reply = self._get_or_none(f"/containers/json?all=1&filters={filters}", "the listing")
        rows = reply if isinstance(reply, list) else []
        return [summary_info(row, states) for row in rows if isinstance(row, dict)]


def summary_info(row: Mapping[str, Any], states: Mapping[str, ContainerState]) -> ContainerInfo:
    """A `ContainerInfo` from one row of the Docker-compatible `/containers/json` listing."""
    names = row.get("Names")
    name = str(names[0]) if isinstance(names, list) and names else ""
    created = row.get("Created")
    created_at = ""
    if isinstance(created, int) and created > 0:
        created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
    labels = row.get("Labels")
    networks = (row.get("NetworkSettings") or {}).get("Networks")
    return ContainerInfo(
        id=str(row.get("Id", "")),
        name=name.lstrip("/"),
        state=states.get(str(row.get("State", "")), ContainerState.UNKNOWN),
        image=str(row.get("Image", "")),
        started_at="",
        created_at=created_at,
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        networks={
            str(net): str(value.get("IPAddress") or "")
            for net, value in networks.items()
            if isinstance(value, dict)
        }
        if isinstance(networks, dict)
        else {},
    )


def quote_query(text: str) -> str:
    """Percent-encode a query value (everything but unreserved characters)."""
    safe = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-~")
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in text.encode())
