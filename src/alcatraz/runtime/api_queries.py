"""Read-only engine queries through the local API socket, in the CLI's own JSON shapes.

Why: a `docker`/`podman` CLI query costs 20-110 ms of process start; the same question on
the socket takes about a millisecond. Docker's API returns exactly what `docker inspect`
prints; Podman's `/libpod/` endpoints return what `podman inspect` prints, so the parsers in
`cli_output` serve both paths and `CliRuntime` stays the one implementation callers see.
`ApiUnavailable` (nothing answered) lets the caller fall back to the CLI; an engine error is
an `AlcaError` with the engine's words made printable. A 404 means "there is none" only when
the engine says so in its own words: Podman 4 answers an unversioned `/libpod/` path with a
bare 404 too, so its paths carry the version it reports (asked once per daemon identity),
and any other 404 counts as the API not being usable here.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from alcatraz.errors import AlcaError
from alcatraz.printable import printable_lines
from alcatraz.proc import log_request
from alcatraz.runtime import engine_api
from alcatraz.runtime.base import ContainerInfo, ContainerState
from alcatraz.runtime.cli_output import is_no_such_container, is_no_such_network
from alcatraz.runtime.engine_api import ApiError, ApiUnavailable, quote_segment

if TYPE_CHECKING:
    from alcatraz.runtime.engine_facts import FactsCache

__all__ = ["ApiQueries"]

QUERY_TIMEOUT = 60.0
_VERSION = re.compile(r"[0-9][0-9A-Za-z.-]{0,40}")


class ApiQueries:
    """GET requests on one engine's socket; `libpod` selects Podman's native endpoints."""

    def __init__(self, socket_path: str, *, libpod: bool, facts: FactsCache | None = None) -> None:
        self.socket_path = socket_path
        self.libpod = libpod
        self.facts = facts
        self._prefix: str | None = None if libpod else ""

    @property
    def prefix(self) -> str:
        """ "" for Docker; `/v<version>/libpod` for Podman (its own shapes, like its CLI)."""
        if self._prefix is None:
            version = self.facts.get("libpod_version") if self.facts is not None else None
            if version is None:
                reply = self._get("/version")
                version = str(reply.get("Version", "")) if isinstance(reply, dict) else ""
                if _VERSION.fullmatch(version) and self.facts is not None:
                    self.facts.put("libpod_version", version)
            if not _VERSION.fullmatch(version):
                raise ApiUnavailable("the engine did not say which version it is")
            self._prefix = f"/v{version}/libpod"
        return self._prefix

    def _get(self, path: str) -> Any:
        log_request(f"GET {path} via {self.socket_path}")
        return engine_api.request(self.socket_path, "GET", path, timeout=QUERY_TIMEOUT)

    def _get_or_none(self, path: str, what: str, missing: Callable[[str], bool]) -> Any:
        """The reply; None for a 404 whose message says `missing`; `ApiUnavailable` for
        another 404 (a path this engine does not serve); `AlcaError` for other errors."""
        try:
            return self._get(path)
        except ApiError as error:
            if error.status == 404 and missing(error.message):
                return None
            if error.status == 404:
                raise ApiUnavailable(f"the engine does not serve {path}") from None
            raise AlcaError(
                f"the engine refused {what} ({error.status}): {printable_lines(error.message)}"
            ) from None

    def ping(self) -> bool:
        """Whether the engine answers on the socket (about a millisecond)."""
        log_request(f"GET /_ping via {self.socket_path}")
        return engine_api.ping(self.socket_path)

    def container(self, name: str) -> dict[str, Any] | None:
        """`container inspect NAME` as one JSON object, or None when there is none."""
        path = f"{self.prefix}/containers/{quote_segment(name)}/json"
        reply = self._get_or_none(path, name, is_no_such_container)
        return reply if isinstance(reply, dict) else None

    def network(self, name: str) -> dict[str, Any] | None:
        """`network inspect NAME` as one JSON object, or None when there is none."""
        suffix = "/json" if self.libpod else ""  # Docker: /networks/NAME; Podman: .../json
        path = f"{self.prefix}/networks/{quote_segment(name)}{suffix}"
        reply = self._get_or_none(path, name, is_no_such_network)
        if isinstance(reply, list):  # some Podman versions wrap it in a list
            reply = reply[0] if reply else None
        return reply if isinstance(reply, dict) else None

    def networks(self) -> list[dict[str, Any]]:
        """Every network, each as `network inspect` shows it, in one request."""
        path = f"{self.prefix}/networks/json" if self.libpod else "/networks"
        reply = self._get_or_none(path, "the network listing", lambda _: False)
        return [item for item in reply if isinstance(item, dict)] if isinstance(reply, list) else []

    def containers_by_label(
        self, label: str, states: Mapping[str, ContainerState]
    ) -> list[ContainerInfo]:
        """Every container (any state) with `label` ("key" or "key=value"), in one request.

        From the listing alone (no inspect per container, so 200 projects cost one call):
        id, name, state, image, labels, networks and the creation time (to the second).
        """
        filters = quote_query(json.dumps({"label": [label]}))
        path = f"/containers/json?all=1&filters={filters}"
        reply = self._get_or_none(path, "the listing", lambda _: False)
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
