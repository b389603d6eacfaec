"""Docker/Podman argv building, inspect parsing and the engine wrapper, without engines.

Parsing is tested on `container inspect` output recorded from Docker 20.10 and Podman 4.3
(tests/fixtures/runtime/record.sh). Behaviour around the CLI uses a scripted runner.
"""

from __future__ import annotations

import csv
import ipaddress
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from alcatraz.config.netgrammar import PortMapping
from alcatraz.errors import AlcaError, UnavailableError
from alcatraz.proc import CommandFailed, Result
from alcatraz.runtime.base import BindMount, ContainerSpec, ContainerState
from alcatraz.runtime.cli_compat import (
    CliRuntime,
    check_name,
    format_cpus,
    is_no_such_container,
    mount_arg,
    parse_inspect,
    parse_inspect_objects,
)
from alcatraz.runtime.docker import DockerRuntime
from alcatraz.runtime.podman import PodmanRuntime
from tests.fakes import FakeRunner

FIXTURES = Path(__file__).parents[2] / "fixtures" / "runtime"


def docker(runner: FakeRunner | None = None) -> DockerRuntime:
    return DockerRuntime(runner or FakeRunner())


def podman(runner: FakeRunner | None = None, init_path: str | None = None) -> PodmanRuntime:
    return PodmanRuntime(runner or FakeRunner(), init_path=init_path)


Make = Callable[..., CliRuntime]


def spec(**changes: object) -> ContainerSpec:
    base: dict[str, object] = {
        "name": "alca-550e8400-e29",
        "image": "alpine:3.21",
        "workdir": "/workspace",
        "labels": {"alca.project.id": "550e8400", "alca.project.path": "/home/u/p"},
    }
    base.update(changes)
    return ContainerSpec(**base)  # type: ignore[arg-type]


def options_after(argv: list[str], flag: str) -> list[str]:
    """Every value given to `flag` (flags take the next element as their value)."""
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


# --- run_argv --------------------------------------------------------------------------------


def test_minimal_spec_exact_argv() -> None:
    assert docker().run_argv(spec()) == [
        "run", "-d",
        "--name", "alca-550e8400-e29",
        "--restart=no",
        "--init",
        "--security-opt", "no-new-privileges",
        "--pids-limit", "4096",
        "-w", "/workspace",
        "--label", "alca.project.id=550e8400",
        "--label", "alca.project.path=/home/u/p",
        "--", "alpine:3.21", "sleep", "infinity",
    ]  # fmt: skip


def test_full_spec_exact_argv_and_order() -> None:
    full = spec(
        mounts=[BindMount("/home/u/p", "/workspace"), BindMount("/etc/x", "/x", readonly=True)],
        env={"A": "1", "B": "two words"},
        ports=[PortMapping(80, 8080, ipaddress.ip_address("127.0.0.1"), "tcp")],
        cap_drop=["ALL"],
        cap_add=["CHOWN", "NET_BIND_SERVICE"],
        memory="4g",
        cpus=1.5,
        pids_limit=512,
        network="alca-net-1",
        pull="never",
        extra_args=["--ulimit", "nofile=1024:1024"],
    )
    assert docker().run_argv(full) == [
        "run", "-d",
        "--name", "alca-550e8400-e29",
        "--restart=no",
        "--init",
        "--security-opt", "no-new-privileges",
        "--pids-limit", "512",
        "-w", "/workspace",
        "--label", "alca.project.id=550e8400",
        "--label", "alca.project.path=/home/u/p",
        "--mount", 'type=bind,"src=/home/u/p","dst=/workspace"',
        "--mount", 'type=bind,"src=/etc/x","dst=/x",readonly',
        "-m", "4g",
        "--cpus", "1.5",
        "-e", "A=1",
        "-e", "B=two words",
        "-p", "127.0.0.1:8080:80",
        "--cap-drop", "ALL",
        "--cap-add", "CHOWN",
        "--cap-add", "NET_BIND_SERVICE",
        "--network", "alca-net-1",
        "--pull=never",
        "--ulimit", "nofile=1024:1024",
        "--", "alpine:3.21", "sleep", "infinity",
    ]  # fmt: skip


def test_create_argv_has_the_same_options_as_run_argv() -> None:
    runtime = docker()
    full = spec(env={"A": "1"}, cap_drop=["ALL"])
    assert runtime.create_argv(full) == ["create", *runtime.run_argv(full)[2:]]


def test_podman_argv_equals_docker_argv_by_default() -> None:
    full = spec(env={"A": "1"}, cap_add=["CHOWN"], memory="1g")
    assert podman().run_argv(full) == docker().run_argv(full)


def test_podman_init_path_follows_init() -> None:
    argv = podman(init_path="/usr/bin/tini").run_argv(spec())
    i = argv.index("--init")
    assert argv[i : i + 3] == ["--init", "--init-path", "/usr/bin/tini"]


def test_labels_keep_their_order_and_values_verbatim() -> None:
    labels = {"z": "1", "a": "x=y", "m": "with space", "alca.version": "1"}
    argv = docker().run_argv(spec(labels=labels))
    assert options_after(argv, "--label") == ["z=1", "a=x=y", "m=with space", "alca.version=1"]


@pytest.mark.parametrize("key", ["", "a=b"])
def test_bad_label_key_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="label key"):
        docker().run_argv(spec(labels={key: "v"}))


TRICKY_PATHS = [
    "/home/u/my project",
    "/home/u/it's",
    '/home/u/say "hi"',
    "/home/u/line\nbreak",
    "/home/u/$(touch /tmp/pwned)",
    "/home/u/`id`",
    "/home/u/a,b",
    "/home/u/c:d",
    "/home/u/e=f",
    "/home/u/tab\there",
    "/home/u/;rm -rf ~;",
    '/home/u/"',
    '/home/u/",readonly',
]


@pytest.mark.parametrize("path", TRICKY_PATHS)
@pytest.mark.parametrize("readonly", [False, True])
def test_tricky_mount_path_is_one_element_and_decodes_back(path: str, readonly: bool) -> None:
    argv = docker().run_argv(spec(mounts=[BindMount(path, path + "/in", readonly)]))
    values = options_after(argv, "--mount")
    assert len(values) == 1
    # Both engines read --mount as one CSV record (Go encoding/csv); Python's reader agrees
    # on quoted fields, so this decodes exactly as the engines do.
    fields = next(csv.reader([values[0]], strict=True))
    expected = ["type=bind", f"src={path}", f"dst={path}/in"] + (["readonly"] if readonly else [])
    assert fields == expected


def test_mount_arg_quotes_every_path_field() -> None:
    assert mount_arg(BindMount("/a", "/b")) == 'type=bind,"src=/a","dst=/b"'
    assert mount_arg(BindMount('/q"x', "/b", True)) == 'type=bind,"src=/q""x","dst=/b",readonly'


@pytest.mark.parametrize("value", ["$(id)", "`id`", "a b", "x\ny", "'\"", "${HOME}", "", "=x"])
def test_env_values_are_single_verbatim_elements(value: str) -> None:
    argv = docker().run_argv(spec(env={"K": value}))
    assert options_after(argv, "-e") == [f"K={value}"]


@pytest.mark.parametrize("key", ["", "A=B", "A\x00"])
def test_bad_env_names_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="environment variable name"):
        docker().run_argv(spec(env={key: "v"}))


def test_ports_ipv4_ipv6_udp_and_all_interfaces() -> None:
    ports = [
        PortMapping(80, 8080, None, "tcp"),
        PortMapping(53, 5353, ipaddress.ip_address("127.0.0.1"), "udp"),
        PortMapping(443, 8443, ipaddress.ip_address("::1"), "tcp"),
        PortMapping(9000, 9000, ipaddress.ip_address("fd00::2"), "udp"),
    ]
    argv = docker().run_argv(spec(ports=ports))
    assert options_after(argv, "-p") == [
        "8080:80",
        "127.0.0.1:5353:53/udp",
        "[::1]:8443:443",
        "[fd00::2]:9000:9000/udp",
    ]


def test_caps_drop_before_add_in_given_order() -> None:
    argv = docker().run_argv(spec(cap_drop=["ALL"], cap_add=["SETUID", "CHOWN"]))
    tail = argv[argv.index("--cap-drop") :]
    assert tail[:6] == ["--cap-drop", "ALL", "--cap-add", "SETUID", "--cap-add", "CHOWN"]


@pytest.mark.parametrize(
    ("cpus", "expected"),
    [(0.5, "0.5"), (2.0, "2"), (2, "2"), (1.25, "1.25"), (0.001, "0.001"), (1e-9, "0.000000001")],
)
def test_cpus_are_plain_decimals(cpus: float, expected: str) -> None:
    assert format_cpus(cpus) == expected
    assert options_after(docker().run_argv(spec(cpus=cpus)), "--cpus") == [expected]


@pytest.mark.parametrize("cpus", [None, 0, 0.0])
def test_no_cpu_limit_means_no_flag(cpus: float | None) -> None:
    assert "--cpus" not in docker().run_argv(spec(cpus=cpus))


def test_memory_and_network_only_when_set() -> None:
    argv = docker().run_argv(spec())
    assert "-m" not in argv
    assert "--network" not in argv
    assert "--mount" not in argv
    argv = docker().run_argv(spec(memory="512m", network="n1"))
    assert options_after(argv, "-m") == ["512m"]
    assert options_after(argv, "--network") == ["n1"]


@pytest.mark.parametrize("image", ["alpine:3.21", "-rf", "--privileged", "ghcr.io/x/y@sha256:ab"])
def test_image_always_follows_double_dash(image: str) -> None:
    argv = docker().run_argv(spec(image=image, keepalive=("tail", "-f", "/dev/null")))
    assert argv[-5:] == ["--", image, "tail", "-f", "/dev/null"]
    assert argv.index("--") == len(argv) - 5


def test_extra_args_come_just_before_the_image() -> None:
    argv = docker().run_argv(spec(network="n", extra_args=["--ulimit", "nproc=64"]))
    assert argv[-7:-4] == ["n", "--ulimit", "nproc=64"]


@pytest.mark.parametrize("name", ["", "-rf", "--privileged", "a b", "a/b", "_x", "a;b", "é"])
def test_bad_container_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid container name"):
        check_name(name)
    with pytest.raises(ValueError):
        docker().run_argv(spec(name=name))
    with pytest.raises(ValueError):
        docker().exec_argv(name, ["true"])


def test_restart_policy_is_one_element() -> None:
    assert "--restart=always" in docker().run_argv(spec(restart="always"))


# --- exec_argv -------------------------------------------------------------------------------


def test_exec_argv_defaults() -> None:
    assert docker().exec_argv("c1", ["sh", "-c", "echo $HOME"]) == [
        "exec", "-i", "c1", "sh", "-c", "echo $HOME",
    ]  # fmt: skip


def test_exec_argv_tty_env_workdir() -> None:
    argv = podman().exec_argv(
        "c1", ["bash"], workdir="/work space", env={"A": "1", "B": "$(x) y"}, tty=True
    )
    assert argv == [
        "exec", "-i", "-t", "-e", "A=1", "-e", "B=$(x) y", "-w", "/work space", "c1", "bash",
    ]  # fmt: skip


def test_exec_argv_not_interactive() -> None:
    assert docker().exec_argv("c1", ["true"], interactive=False) == ["exec", "c1", "true"]
    assert docker().exec_argv("c1", ["true"], interactive=False, tty=True) == [
        "exec", "-t", "c1", "true",
    ]  # fmt: skip


def test_exec_argv_needs_a_command() -> None:
    with pytest.raises(ValueError, match="needs a command"):
        docker().exec_argv("c1", [])


# --- parsing recorded inspect output ---------------------------------------------------------


def load(engine: str) -> str:
    return (FIXTURES / f"{engine}-inspect.json").read_text()


@pytest.mark.parametrize("runtime", [DockerRuntime, PodmanRuntime])
def test_fixture_running_container(runtime: type[CliRuntime]) -> None:
    engine = runtime.__name__.removesuffix("Runtime").lower()
    full, _, _ = parse_inspect(load(engine), runtime.STATES)
    assert full.name == "alca-fx-full"  # Docker's leading "/" is gone
    assert len(full.id) == 64
    assert full.state is ContainerState.RUNNING
    assert full.labels["alca.project.id"] == "fx-1"
    assert full.labels["alca.project.path"].endswith("/work space")
    assert full.labels["alca.version"] == "1"
    assert full.restart_policy == "unless-stopped"
    assert full.memory == 64 * 1024 * 1024
    assert full.nano_cpus == 500_000_000
    assert full.pids_limit == 512
    assert full.init is True
    assert full.security_opt == ("no-new-privileges",)
    assert full.started_at.startswith("20")
    assert full.created_at.startswith("20")
    # by target (the engine's own order is not fixed)
    assert [(m.target, m.readonly) for m in full.mounts] == [("/ro", True), ("/workspace", False)]
    assert full.mounts[1].source.endswith("/work space")
    assert full.mounts[0].source.endswith("/ro:dir")
    assert [p.docker_arg() for p in full.ports] == [
        f"[::1]:{full.ports[0].host_port}:53/udp",
        f"127.0.0.1:{full.ports[1].host_port}:80",
    ]
    assert len(full.networks) == 1
    ip = next(iter(full.networks.values()))
    assert ipaddress.ip_address(ip).version == 4


def test_docker_fixture_specifics() -> None:
    full, exited, created = parse_inspect(load("docker"), DockerRuntime.STATES)
    assert full.image == "alpine:3.21"
    assert full.cap_add == ("CAP_CHOWN",)
    assert full.cap_drop == ("ALL",)
    assert full.effective_caps is None  # Docker does not report them
    assert list(full.networks) == ["bridge"]
    assert exited.state is ContainerState.STOPPED
    assert exited.restart_policy == "no"
    assert exited.pids_limit is None  # unlimited
    assert created.state is ContainerState.UNKNOWN  # "created": upstream's mapping
    assert created.networks == {"alca-fx-net": ""}
    assert created.started_at == "0001-01-01T00:00:00Z"


def test_podman_fixture_specifics() -> None:
    full, exited, created = parse_inspect(load("podman"), PodmanRuntime.STATES)
    assert full.image == "docker.io/library/alpine:3.21"  # fully qualified
    # Podman reports caps relative to its default set, plus the effective set.
    assert full.cap_add == ()
    assert "CAP_CHOWN" not in full.cap_drop
    assert "CAP_NET_RAW" in full.cap_drop
    assert full.effective_caps == ("CAP_CHOWN",)
    assert list(full.networks) == ["podman"]
    assert exited.state is ContainerState.STOPPED
    assert exited.restart_policy == ""  # Podman leaves it empty when not given; Docker says "no"
    assert exited.pids_limit == 2048  # Podman's default
    assert created.state is ContainerState.UNKNOWN
    assert created.networks == {"alca-fx-net": ""}


def test_podman_stopped_status_maps_to_stopped() -> None:
    text = '[{"Id": "1", "Name": "x", "State": {"Status": "stopped"}}]'
    assert parse_inspect(text, PodmanRuntime.STATES)[0].state is ContainerState.STOPPED
    assert parse_inspect(text, DockerRuntime.STATES)[0].state is ContainerState.UNKNOWN


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("running", ContainerState.RUNNING),
        ("exited", ContainerState.STOPPED),
        ("created", ContainerState.UNKNOWN),
        ("paused", ContainerState.UNKNOWN),
        ("restarting", ContainerState.UNKNOWN),
        ("dead", ContainerState.UNKNOWN),
        ("", ContainerState.UNKNOWN),
    ],
)
def test_state_mapping(status: str, state: ContainerState) -> None:
    text = f'[{{"Id": "1", "Name": "/x", "State": {{"Status": "{status}"}}}}]'
    assert parse_inspect(text, DockerRuntime.STATES)[0].state is state


def test_parse_empty_and_sparse() -> None:
    assert parse_inspect("") == []
    assert parse_inspect("[]\n") == []
    info = parse_inspect('[{"Id": "abc", "Name": "/n", "HostConfig": {"PidsLimit": 0}}]')[0]
    assert (info.id, info.name, info.labels, info.pids_limit, info.mounts) == (
        "abc",
        "n",
        {},
        None,
        (),
    )


@pytest.mark.parametrize("text", ["{", '{"Id": "x"}', "[1]", "null"])
def test_parse_garbage_raises(text: str) -> None:
    with pytest.raises(AlcaError):
        parse_inspect(text)


# --- the wrapper around the CLI --------------------------------------------------------------

DOCKER_MISSING = "Error response from daemon: No such container: {}\n"
PODMAN_MISSING = "Error: inspecting object: no such container {}\n"
ONE = '[{"Id": "0123abcd", "Name": "/c1", "State": {"Status": "running"}}]'


@pytest.mark.parametrize(("make", "err"), [(docker, DOCKER_MISSING), (podman, PODMAN_MISSING)])
def test_inspect_missing_is_none(make: Make, err: str) -> None:
    runner = FakeRunner().on(
        make().executable, "container", "inspect", rc=1, out="[]\n", err=err.format("c1")
    )
    assert make(runner).inspect("c1") is None


def test_inspect_engine_error_raises_with_stderr() -> None:
    err = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is it running?\n"
    runner = FakeRunner().on("docker", "container", "inspect", rc=1, err=err)
    with pytest.raises(CommandFailed, match="Cannot connect to the Docker daemon"):
        docker(runner).inspect("c1")


def test_inspect_mixed_missing_and_other_error_raises() -> None:
    err = DOCKER_MISSING.format("a") + "permission denied while trying to connect\n"
    runner = FakeRunner().on("docker", "container", "inspect", rc=1, out="[]", err=err)
    with pytest.raises(CommandFailed, match="permission denied"):
        docker(runner).inspect("a")


def test_inspect_found() -> None:
    runner = FakeRunner().on("docker", "container", "inspect", out=ONE)
    info = docker(runner).inspect("c1")
    assert info is not None
    assert (info.name, info.state) == ("c1", ContainerState.RUNNING)
    assert runner.calls == [("docker", "container", "inspect", "c1")]
    assert docker(runner).inspect("0123abcd") is not None  # by full id


def test_inspect_ignores_an_id_prefix_match() -> None:
    # `inspect abc` also matches a container whose id starts with "abc".
    runner = FakeRunner().on("docker", "container", "inspect", out=ONE)
    assert docker(runner).inspect("0123") is None


def test_list_by_label_batches_one_inspect_and_tolerates_vanished() -> None:
    two = (
        '[{"Id": "bbb", "Name": "/zeta", "State": {"Status": "exited"}},'
        ' {"Id": "aaa", "Name": "/alpha", "State": {"Status": "running"}}]'
    )
    runner = (
        FakeRunner()
        .on("docker", "ps", out="aaa\nbbb\nccc\n")
        .on("docker", "container", "inspect", rc=1, out=two, err=DOCKER_MISSING.format("ccc"))
    )
    infos = docker(runner).list_by_label("alca.project.id")
    assert [i.name for i in infos] == ["alpha", "zeta"]
    assert runner.calls == [
        ("docker", "ps", "-a", "--no-trunc", "--filter", "label=alca.project.id",
         "--format", "{{.ID}}"),
        ("docker", "container", "inspect", "aaa", "bbb", "ccc"),
    ]  # fmt: skip


def test_list_by_label_none_found_makes_no_inspect() -> None:
    runner = FakeRunner().on("podman", "ps", out="\n")
    assert podman(runner).list_by_label("alca.project.id=x") == []
    assert runner.calls == [
        ("podman", "ps", "-a", "--no-trunc", "--filter", "label=alca.project.id=x",
         "--format", "{{.ID}}"),
    ]  # fmt: skip


def test_list_by_label_engine_error_raises() -> None:
    runner = FakeRunner().on("docker", "ps", rc=1, err="daemon down")
    with pytest.raises(CommandFailed, match="daemon down"):
        docker(runner).list_by_label("k")


def test_create_then_start_returns_id() -> None:
    runner = (
        FakeRunner()
        .on("docker", "create", out="Unable to find image... (progress)\nfeedbeef\n")
        .on("docker", "start", out="feedbeef\n")
    )
    assert docker(runner).create(spec()) == "feedbeef"
    assert runner.calls[0] == ("docker", *docker().create_argv(spec()))
    assert runner.calls[1] == ("docker", "start", "feedbeef")


@pytest.mark.parametrize(
    ("make", "rm"),
    [(docker, ("rm", "-f", "feedbeef")), (podman, ("rm", "-f", "-t", "0", "feedbeef"))],
)
def test_failed_start_removes_exactly_the_new_container(make: Make, rm: tuple[str, ...]) -> None:
    exe = make().executable
    err = "Error: cannot listen on the TCP port: listen tcp4 127.0.0.1:80: address already in use"
    runner = (
        FakeRunner()
        .on(exe, "create", out="feedbeef\n")
        .on(exe, "start", rc=125, err=err)
        .on(exe, "rm", out="feedbeef\n")
    )
    with pytest.raises(CommandFailed, match="address already in use") as caught:
        make(runner).create(spec())
    assert "could not start container alca-550e8400-e29" in caught.value.message
    assert runner.calls[-1] == (exe, *rm)


def test_failed_create_does_not_start_or_remove() -> None:
    err = (
        'Error response from daemon: Conflict. The container name "/alca-550e8400-e29" is '
        'already in use by container "abc".'
    )
    runner = FakeRunner().on("docker", "create", rc=125, err=err)
    with pytest.raises(CommandFailed, match="already in use"):
        docker(runner).create(spec())
    assert len(runner.calls) == 1


def test_podman_missing_init_binary_explains_the_fix() -> None:
    err = (
        "Error: container-init binary not found on the host: stat "
        "/usr/libexec/podman/catatonit: no such file or directory\n"
    )
    runner = FakeRunner().on("podman", "create", rc=125, err=err)
    with pytest.raises(UnavailableError, match="catatonit") as caught:
        podman(runner).create(spec())
    assert caught.value.hint is not None
    assert "init_path" in caught.value.hint


def test_create_without_id_output_is_an_error() -> None:
    runner = FakeRunner().on("docker", "create", out="")
    with pytest.raises(AlcaError, match="no container id"):
        docker(runner).create(spec())


def test_start_stop_argv() -> None:
    runner = FakeRunner().on("docker", "start").on("docker", "stop")
    runtime = docker(runner)
    runtime.start("c1")
    runtime.stop("c1", timeout=3)
    assert runner.calls == [("docker", "start", "c1"), ("docker", "stop", "-t", "3", "c1")]


def test_stop_failure_raises() -> None:
    runner = FakeRunner().on("podman", "stop", rc=125, err="Error: no such container c1")
    with pytest.raises(CommandFailed, match="stop failed"):
        podman(runner).stop("c1")


@pytest.mark.parametrize(
    ("make", "err"),
    [
        (docker, "Error response from daemon: No such container: c1"),
        (podman, 'Error: no container with name or ID "c1" found: no such container'),
    ],
)
def test_remove_is_idempotent(make: Make, err: str) -> None:
    runner = FakeRunner().on(make().executable, "rm", rc=1, err=err)
    make(runner).remove("c1")


def test_remove_other_error_raises() -> None:
    runner = FakeRunner().on("docker", "rm", rc=1, err="Error: device or resource busy")
    with pytest.raises(CommandFailed, match="could not remove container c1"):
        docker(runner).remove("c1")


def test_no_such_container_detection() -> None:
    assert is_no_such_container(DOCKER_MISSING.format("x"))
    assert is_no_such_container(PODMAN_MISSING.format("x") + PODMAN_MISSING.format("y"))
    assert is_no_such_container("Error: No such object: x")
    assert not is_no_such_container("")
    assert not is_no_such_container("Error: cannot connect to Podman")


def test_exec_streams_and_passes_the_exit_code_through() -> None:
    runner = FakeRunner().on("docker", "exec", rc=7)
    assert docker(runner).exec("c1", ["sh", "-c", "exit 7"], workdir="/w", env={"A": "b"}) == 7
    assert runner.streamed == [
        ("docker", "exec", "-e", "A=b", "-w", "/w", "c1", "sh", "-c", "exit 7")
    ]


def test_exec_capture() -> None:
    runner = FakeRunner().on("podman", "exec", rc=3, out="hi\n")
    result = podman(runner).exec_capture("c1", ["echo", "hi"])
    assert (result.returncode, result.stdout) == (3, "hi\n")
    assert runner.calls == [("podman", "exec", "c1", "echo", "hi")]


@pytest.mark.parametrize(
    ("make", "fmt"), [(docker, "{{.Server.Version}}"), (podman, "{{.Version}}")]
)
def test_version_and_available(make: Make, fmt: str) -> None:
    exe = make().executable
    runner = FakeRunner().on(exe, "version", out="20.10.24\n")
    runtime = make(runner)
    assert runtime.version() == "20.10.24"
    assert runtime.available() is True
    assert runner.calls[0] == (exe, "version", "--format", fmt)


@pytest.mark.parametrize(
    "failure",
    [
        Result((), 1, "", "Cannot connect to the Docker daemon"),
        UnavailableError("docker is not installed (not found on PATH)"),
        AlcaError("docker did not finish within 10 s"),
    ],
)
def test_not_available(failure: Result | AlcaError) -> None:
    runner = FakeRunner()
    if isinstance(failure, Result):
        runner.on("docker", "version", rc=failure.returncode, err=failure.stderr)
    else:
        runner.raises("docker", "version", exc=failure)
    assert docker(runner).available() is False


@pytest.mark.parametrize(
    ("out", "rootless"),
    [
        ('["name=seccomp,profile=default"]', False),
        ('["name=seccomp,profile=default","name=rootless","name=cgroupns"]', True),
        ("[]", False),
    ],
)
def test_docker_rootless(out: str, rootless: bool) -> None:
    runner = FakeRunner().on("docker", "info", out=out + "\n")
    assert docker(runner).is_rootless() is rootless
    assert runner.calls == [("docker", "info", "--format", DockerRuntime.FACTS_FORMAT)]


@pytest.mark.parametrize("out", ["", "null", "<no value>", '{"a": 1}'])
def test_docker_rootless_unreadable_fails_closed(out: str) -> None:
    runner = FakeRunner().on("docker", "info", out=out)
    with pytest.raises(AlcaError, match="security options"):
        docker(runner).is_rootless()


@pytest.fixture
def not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Podman run by root is rootful without asking; these tests exercise the probe."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)


def test_podman_as_root_is_rootful_without_a_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    monkeypatch.delenv("CONTAINER_CONNECTION", raising=False)
    runner = FakeRunner()
    assert podman(runner).is_rootless() is False
    assert runner.calls == []


@pytest.mark.usefixtures("not_root")
@pytest.mark.parametrize("make", [docker, podman])
def test_rootless_probe_failure_fails_closed(make: Make) -> None:
    runner = FakeRunner().on(make().executable, "info", rc=1, err="boom")
    with pytest.raises(CommandFailed, match="boom"):
        make(runner).is_rootless()


@pytest.mark.parametrize(("out", "rootless"), [("true\n", True), ("false\n", False)])
@pytest.mark.usefixtures("not_root")
def test_podman_rootless(out: str, rootless: bool) -> None:
    runner = FakeRunner().on("podman", "info", out=out)
    assert podman(runner).is_rootless() is rootless
    assert runner.calls == [("podman", "info", "--format", "{{.Host.Security.Rootless}}")]


@pytest.mark.usefixtures("not_root")
def test_podman_rootless_unreadable_fails_closed() -> None:
    runner = FakeRunner().on("podman", "info", out="<no value>\n")
    with pytest.raises(AlcaError, match="rootless"):
        podman(runner).is_rootless()


@pytest.mark.parametrize(
    ("make", "err"),
    [
        (docker, "Error response from daemon: no such image: x:1: No such image: x:1"),
        (podman, "Error: inspecting object: x:1: image not known"),
    ],
)
def test_image_exists(make: Make, err: str) -> None:
    exe = make().executable
    assert make(FakeRunner().on(exe, "image", "inspect", out="sha256:1\n")).image_exists("x:1")
    assert not make(FakeRunner().on(exe, "image", "inspect", rc=1, err=err)).image_exists("x:1")
    broken = FakeRunner().on(exe, "image", "inspect", rc=1, err="storage corrupted")
    with pytest.raises(CommandFailed, match="storage corrupted"):
        make(broken).image_exists("x:1")


def test_failed_start_and_failed_cleanup_says_how_to_clean_up() -> None:
    runner = (
        FakeRunner()
        .on("docker", "create", out="feedbeef\n")
        .on("docker", "start", rc=1, err="bad mount")
        .on("docker", "rm", rc=1, err="device busy")
    )
    with pytest.raises(CommandFailed, match="bad mount") as caught:
        docker(runner).create(spec())
    assert caught.value.hint == "remove the half-made container: docker rm -f feedbeef"


def test_port_bindings_without_fixed_host_port_are_skipped() -> None:
    text = (
        '[{"Id": "1", "Name": "/x", "HostConfig": {"PortBindings": {'
        '"80/tcp": [{"HostIp": "", "HostPort": ""}], '
        '"53/udp": [{"HostIp": "", "HostPort": "5353"}]}}}]'
    )
    assert parse_inspect(text)[0].ports == (PortMapping(53, 5353, None, "udp"),)


def test_mounts_are_in_one_order_whatever_order_the_engine_lists_them() -> None:
    """Docker's `Mounts` come in no fixed order: two inspects of one container must still
    give equal records (the API-vs-CLI parity test failed on it one run in five)."""
    mounts = [
        {"Type": "bind", "Source": "/h/w", "Destination": "/workspace", "RW": True},
        {"Type": "volume", "Source": "/v", "Destination": "/vol", "RW": True},
        {"Type": "bind", "Source": "/h/r", "Destination": "/ro", "RW": False},
    ]
    one = parse_inspect_objects([{"Name": "/c", "Mounts": mounts}])[0]
    other = parse_inspect_objects([{"Name": "/c", "Mounts": mounts[::-1]}])[0]
    assert (
        one.mounts
        == other.mounts
        == (
            BindMount("/h/r", "/ro", readonly=True),
            BindMount("/h/w", "/workspace"),
        )
    )
