"""Prototype `alca run` that talks to the engine's API for the non-TTY case.

Two shapes, timed as fresh processes by `bench/run.py`:

- default: today's `alcatraz.sandbox.enter` (same imports, same checks: project root, cached
  run-spec, identity, nft rules check, config stamps), but the final `os.execvp` of
  `docker|podman exec` is replaced by `engine_api.exec_run` when stdin is not a terminal;
- `--lean`: the same steps written with the imports trimmed (no `typing`, `contextlib`,
  `enum`, OpenSSL `hashlib`), to show what the run path costs once those are gone.

The engine's socket comes from `ALCA_BENCH_SOCKET`, else the engine's default.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _api_exec(spec: dict[str, object], args: list[str], cwd: str, workdir: str) -> int:
    sys.path.insert(0, _HERE)
    import engine_api

    enter = str(spec.get("enter") or "")
    if enter:
        quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in args)
        command = ["sh", "-c", f"{enter} {quoted}"]
    else:
        command = list(args)
    env: list[str] = []
    envs = spec.get("override_envs")
    for name, template in (envs if isinstance(envs, dict) else {}).items():
        value = str(template)
        if value.startswith("${") and value.endswith("}"):
            value = os.environ.get(value[2:-1], "")
        if value:
            env.append(f"{name}={value}")
    engine = str(spec["executable"])
    socket_path = os.environ.get("ALCA_BENCH_SOCKET") or engine_api.default_socket(engine)
    return engine_api.exec_run(
        socket_path, str(spec["container"]), command, workdir=workdir, env=env
    )


def run_today(args: list[str]) -> int:
    """`_fast.run` with its imports, API instead of exec for non-TTY stdin."""
    from alcatraz.errors import RefusedError
    from alcatraz.paths import alca_home_str, find_root
    from alcatraz.sandbox import enter as _fast
    from alcatraz.state import read_json, root_identity, stamps_current, state_file

    cwd = os.getcwd()
    root = find_root(cwd)
    if root is None:
        raise SystemExit("no .alca.toml")
    data = read_json(state_file(alca_home_str(), root)) or {}
    spec = data["run_spec"]
    if data.get("root_identity") != root_identity(root):
        raise RefusedError("identity")
    isolation = spec.get("isolation")
    enforced = isinstance(isolation, dict) and isolation.get("enforced")
    if enforced and not _fast.rules_loaded(isolation):
        raise RefusedError("rules not loaded")
    if not stamps_current(spec.get("stamps", [])):
        sys.stderr.write("Note: the configuration changed since the last 'alca up'.\n")
    workdir = _fast.container_workdir(str(spec["workdir"]), str(spec["project_root"]), cwd)
    if os.isatty(0):
        _fast.exec_replace(_fast.build_argv(spec, args, cwd, True))
    return _api_exec(spec, args, cwd, workdir)


def _sha256_hex(data: bytes) -> str:
    try:  # the builtin implementations: no OpenSSL load (~2 ms)
        from _sha2 import sha256  # type: ignore[import-not-found]  # 3.12+
    except ImportError:
        from _sha256 import sha256  # type: ignore[import-not-found,no-redef]  # 3.11
    return str(sha256(data).hexdigest())


def _spawn_output(argv: list[str]) -> tuple[int, str]:
    read_end, write_end = os.pipe()
    devnull = os.open(os.devnull, os.O_WRONLY)
    actions = [
        (os.POSIX_SPAWN_DUP2, write_end, 1),
        (os.POSIX_SPAWN_DUP2, devnull, 2),
        (os.POSIX_SPAWN_CLOSE, read_end),
    ]
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
    finally:
        os.close(write_end)
        os.close(devnull)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def run_lean(args: list[str]) -> int:
    """The same checks with only `os`, `json`, `_sha2`, `socket` and `select` imported."""
    import json
    import stat

    cwd = os.getcwd()
    root = cwd
    while True:
        try:
            if not stat.S_ISDIR(os.lstat(os.path.join(root, ".alca.toml")).st_mode):
                break
        except OSError:
            pass
        parent = os.path.dirname(root)
        if parent == root:
            raise SystemExit("no .alca.toml")
        root = parent
    home = os.environ.get("ALCA_HOME") or os.path.join(os.path.expanduser("~"), ".alcatraz")
    key = _sha256_hex(os.path.realpath(root).encode("utf-8", "surrogateescape"))[:24]
    with open(os.path.join(home, "projects", key, "state.json"), encoding="utf-8") as handle:
        data = json.load(handle)
    spec = data["run_spec"]
    info = os.stat(root)
    if data.get("root_identity") != [info.st_dev, info.st_ino]:
        raise SystemExit("identity")
    isolation = spec.get("isolation")
    if isinstance(isolation, dict) and isolation.get("enforced"):
        key_, digest = str(isolation["key"]), str(isolation["digest"])
        code, out = _spawn_output(
            [
                *(str(c) for c in isolation["nft"]),
                "list",
                "chain",
                "inet",
                "alcatraz",
                f"p_{key_}_fwd",
            ]
        )
        if not (code == 0 and f'comment "alcatraz {key_} {digest}"' in out):
            raise SystemExit("rules not loaded")
    for path, mtime_ns, size in spec.get("stamps", []):
        try:
            st = os.stat(path)
        except OSError:
            break
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            sys.stderr.write("Note: the configuration changed since the last 'alca up'.\n")
            break
    workdir = str(spec["workdir"])
    prefix = os.path.join(str(spec["project_root"]), "")
    if cwd.startswith(prefix):
        workdir = workdir.rstrip("/") + "/" + cwd[len(prefix) :]
    return _api_exec(spec, args, cwd, workdir)


def main(argv: list[str]) -> int:
    """Run, then leave with `os._exit`: `exec` never pays interpreter shutdown, so neither may
    this (its final garbage collection costs 2-15 ms, more with site-packages hooks)."""
    code = run_lean(argv[1:]) if argv[:1] == ["--lean"] else run_today(argv)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
