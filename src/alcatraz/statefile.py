"""The types of a project's `state.json`, each with one validating reader and a writer.

`ProjectState` is the file; `RunSpec` the contract between `alca up` and every `alca run`;
`IsolationRecord` which network, rules, second layer and daemon guard the sandbox.

`from_json` is the only way in: a value of the wrong type raises `StateFileError`, which
names the file and the key, instead of letting a `KeyError` or a wrong truth test surface
later (on the run path that would be a traceback or a check skipped). Unknown top-level
keys are kept and written back (`ProjectState.extra`), so a field added later survives a
round trip through this version; unknown keys inside the records are ignored, because `up`
always rewrites a record whole.

Standard library only, and cheap: `alca run` reads the file on every call, and its import
guard (tests/unit/test_startup.py) forbids `dataclasses` (it imports `inspect`), so the
types are `NamedTuple`s: immutable, typed, compared by value. No `from __future__ import
annotations` here: `NamedTuple` would compile each field's annotation string (~0.5 ms).
"""

from typing import Any, Final, NamedTuple

from alcatraz.statereader import STATE_FIX, Reader, StateFileError, is_int

__all__ = [  # STATE_FIX and StateFileError keep being imported from here
    "STATE_FIX",
    "STATE_VERSION",
    "IsolationRecord",
    "ProjectState",
    "ResolverEntry",
    "RunSpec",
    "StateFileError",
]

#: The layout `to_json` writes. Version 1 is the layout of the untyped code, unchanged.
STATE_VERSION: Final = 1


class ResolverEntry(NamedTuple):
    """The project's resolver (`alcatraz.network.resolver`): `alca run` restarts it from this."""

    listen: str
    pidfile: str
    log: str
    resolv_conf: str = ""
    policy: str = ""  # the daemon's policy file (egress, host-LAN sets, mark)

    @classmethod
    def from_json(cls, data: object, file: str = "state.json", prefix: str = "") -> "ResolverEntry":
        read = Reader(data, file, prefix)
        for key in ("listen", "pidfile", "log"):
            if not isinstance(read.data.get(key), str):
                raise read.fail(key, "a string")
        return cls(*(read.text(key) for key in cls._fields))

    def to_json(self) -> dict[str, str]:
        # Without a policy file, files from before egress read and write back identically.
        return {key: value for key, value in self._asdict().items() if value or key != "policy"}


class IsolationRecord(NamedTuple):
    """The network and rules that guard a sandbox, as `up` loaded them.

    A record `down` rebuilds after an interrupted `up` (`sandbox.guard.fallback_record`) has
    no subnet, gateway or digest.
    """

    network: str = ""
    interface: str = ""
    subnet: str | None = None
    gateway: str | None = None
    key: str = ""
    digest: str = ""
    enforced: bool = False
    allow_all: bool = False
    nft: tuple[str, ...] | None = None  # the nft command line, or None without a firewall
    resolver: ResolverEntry | None = None
    #: [pid, start time (None: already gone)] of the init the second layer was loaded into.
    inside: tuple[int, int | None] | None = None
    #: A transparent proxy is loaded: `alca run` checks the rules even with allow-all.
    proxied: bool = False
    #: `network.egress` is enforced: `alca run` refuses while the project's daemon is down.
    egress: bool = False

    @classmethod
    def from_json(
        cls, data: object, file: str = "state.json", prefix: str = ""
    ) -> "IsolationRecord":
        read = Reader(data, file, prefix)
        resolver = read.child("resolver")
        return cls(
            network=read.text("network"),
            interface=read.text("interface"),
            subnet=read.optional_text("subnet"),
            gateway=read.optional_text("gateway"),
            key=read.text("key"),
            digest=read.text("digest"),
            enforced=read.flag("enforced"),
            allow_all=read.flag("allow_all"),
            nft=read.texts("nft"),
            resolver=(
                None
                if resolver is None
                else ResolverEntry.from_json(resolver.data, file, resolver.prefix)
            ),
            inside=_inside(read),
            proxied=read.flag("proxied"),
            egress=read.flag("egress"),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "network": self.network,
            "interface": self.interface,
            "subnet": self.subnet,
            "gateway": self.gateway,
            "key": self.key,
            "digest": self.digest,
            "enforced": self.enforced,
            "allow_all": self.allow_all,
            "nft": None if self.nft is None else list(self.nft),
            "resolver": None if self.resolver is None else self.resolver.to_json(),
        }
        if self.inside is not None:
            data["inside"] = list(self.inside)
        data.update({flag: True for flag in ("proxied", "egress") if getattr(self, flag)})
        return data


def _inside(read: Reader) -> tuple[int, int | None] | None:
    value = read.data.get("inside")
    if value is None:
        return None
    if not (
        isinstance(value, list)
        and len(value) == 2
        and is_int(value[0])
        and (value[1] is None or is_int(value[1]))
    ):
        raise read.fail("inside", "a list [pid, start time] of whole numbers")
    return (value[0], value[1])


#: (path, mtime_ns, size) of one configuration file, as `up` saw it.
Stamp = tuple[str, int, int]


class RunSpec(NamedTuple):
    """What `alca run` needs without parsing TOML (`sandbox.spec.run_spec` builds it at `up`)."""

    executable: str
    container: str
    workdir: str
    project_root: str
    enter: str = ""
    override_envs: dict[str, str] = {}  # noqa: RUF012 - never mutated; the JSON is rebuilt
    stamps: tuple[Stamp, ...] = ()
    isolation: IsolationRecord | None = None
    #: The engine's API socket, recorded by `up` only when it answered there; "" = the CLI.
    api_socket: str = ""

    @classmethod
    def from_json(cls, data: object, file: str = "state.json", prefix: str = "") -> "RunSpec":
        read = Reader(data, file, prefix)
        for key in ("executable", "container", "workdir", "project_root"):
            if not isinstance(read.data.get(key), str):
                raise read.fail(key, "a string")
        isolation = read.child("isolation")
        return cls(
            executable=read.text("executable"),
            container=read.text("container"),
            workdir=read.text("workdir"),
            project_root=read.text("project_root"),
            enter=read.text("enter"),
            override_envs=read.text_table("override_envs"),
            stamps=_stamps(read),
            isolation=(
                None
                if isolation is None
                else IsolationRecord.from_json(isolation.data, file, isolation.prefix)
            ),
            api_socket=read.text("api_socket"),
        )

    def to_json(self) -> dict[str, Any]:
        written = {
            "isolation": None if self.isolation is None else self.isolation.to_json(),
            "executable": self.executable,
            "container": self.container,
            "workdir": self.workdir,
            "project_root": self.project_root,
            "enter": self.enter,
            "override_envs": dict(self.override_envs),
            "stamps": [list(stamp) for stamp in self.stamps],
        }
        if self.api_socket:  # absent when unused: a version 1 file round-trips unchanged
            written["api_socket"] = self.api_socket
        return written


def _stamps(read: Reader) -> tuple[Stamp, ...]:
    value = read.data.get("stamps")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(s, list)
        and len(s) == 3
        and isinstance(s[0], str)
        and is_int(s[1])
        and is_int(s[2])
        for s in value
    ):
        raise read.fail("stamps", "a list of [path, mtime_ns, size]")
    return tuple((s[0], s[1], s[2]) for s in value)


#: The top-level keys `ProjectState` knows; others are kept in `extra`.
_KNOWN: Final = frozenset(
    (
        "version",
        "project_id",
        "project_path",
        "root_identity",
        "container_name",
        "runtime",
        "created_at",
        "snapshot",
        "setup_done",
        "source_pins",
        "isolation",
        "run_spec",
    )
)


class ProjectState(NamedTuple):
    """A project's `state.json`. Missing and null keys read alike (as the untyped code did).

    `snapshot` (the configuration `up` built from, compared by `alcatraz.sandbox.drift`) and
    `source_pins` (workspace sources' identities, `alcatraz.sources`) belong to those
    modules: here they are only checked to be objects.
    """

    version: int = STATE_VERSION
    project_id: str | None = None
    project_path: str | None = None
    root_identity: tuple[int, ...] | None = None  # (st_dev, st_ino) of the project root
    container_name: str | None = None
    runtime: str = ""  # the engine the container was created with
    created_at: str | None = None
    snapshot: dict[str, Any] | None = None
    setup_done: bool = False
    source_pins: dict[str, Any] | None = None
    isolation: IsolationRecord | None = None
    run_spec: RunSpec | None = None
    extra: dict[str, Any] = {}  # noqa: RUF012 - unknown keys, written back as they were

    @classmethod
    def from_json(cls, data: object, file: str = "state.json") -> "ProjectState":
        read = Reader(data, file)
        version = read.number("version", 1)  # files always carried it; 1 if not
        if version > STATE_VERSION or version < 1:
            raise StateFileError(
                f"state file {file} has version {version}; this alcatraz reads versions 1 "
                f"to {STATE_VERSION} (a newer alcatraz wrote it?)",
                hint="use the newer alcatraz, or " + STATE_FIX,
            )
        isolation = read.child("isolation")
        spec = read.child("run_spec")
        return cls(
            version=STATE_VERSION,
            project_id=read.optional_text("project_id"),
            project_path=read.optional_text("project_path"),
            root_identity=read.numbers("root_identity", 2),
            container_name=read.optional_text("container_name"),
            runtime=read.text("runtime"),
            created_at=read.optional_text("created_at"),
            snapshot=read.table("snapshot"),
            setup_done=read.flag("setup_done"),
            source_pins=read.table("source_pins"),
            isolation=(
                None
                if isolation is None
                else IsolationRecord.from_json(isolation.data, file, isolation.prefix)
            ),
            run_spec=None if spec is None else RunSpec.from_json(spec.data, file, spec.prefix),
            extra={k: v for k, v in read.data.items() if k not in _KNOWN},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **self.extra,
            "version": STATE_VERSION,
            "project_id": self.project_id,
            "project_path": self.project_path,
            "root_identity": None if self.root_identity is None else list(self.root_identity),
            "container_name": self.container_name,
            "runtime": self.runtime,
            "created_at": self.created_at,
            "snapshot": self.snapshot,
            "setup_done": self.setup_done,
            "source_pins": self.source_pins,
            "isolation": None if self.isolation is None else self.isolation.to_json(),
            "run_spec": None if self.run_spec is None else self.run_spec.to_json(),
        }
