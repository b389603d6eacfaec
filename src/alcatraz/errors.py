"""Typed errors and the one table of exit codes.

Core code raises these and never prints or exits; `alcatraz.cli` is the single boundary
that turns them into a message on stderr and an exit code. Kept stdlib-only: `alca run`
imports it.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Every exit status `alca` itself can return (`alca run` passes the inner one through)."""

    OK = 0
    FAILURE = 1  # an engine, firewall or sync operation failed; `sync check` found conflicts
    USAGE = 64  # bad command-line arguments
    NOT_INITIALIZED = 66  # no .alca.toml where the command needs one
    UNAVAILABLE = 69  # a required program or engine is missing or not answering
    INTERNAL = 70  # a bug in alcatraz: the traceback is printed
    CANT_CREATE = 73  # a file `alca` must create already exists
    REFUSED = 77  # refused for safety: config not approved, isolation not guaranteed
    CONFIG = 78  # the configuration is invalid
    INTERRUPTED = 130  # Ctrl-C


def quote(value: object) -> str:
    """Render a user-supplied value for a message: quoted, made printable (`printable`)."""
    if isinstance(value, str):
        from alcatraz.printable import printable

        return '"' + printable(value).replace('"', '\\"') + '"'
    return repr(value)


class AlcaError(Exception):
    """An expected failure: shown as a message (and hint), never as a traceback."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, hint: str | None = None, exit_code: ExitCode | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def render(self) -> str:
        text = self.message
        if self.hint:
            text += "\n  Fix: " + self.hint.replace("\n", "\n       ")
        return text


class UsageError(AlcaError):
    """Bad arguments on the command line."""

    exit_code = ExitCode.USAGE


class NotInitializedError(AlcaError):
    """No configuration file where one is needed."""

    exit_code = ExitCode.NOT_INITIALIZED


class UnavailableError(AlcaError):
    """A program `alca` needs (engine, nft, mutagen, git) is missing or not answering."""

    exit_code = ExitCode.UNAVAILABLE


class RefusedError(AlcaError):
    """`alca` refuses to go on because it could not keep its promises."""

    exit_code = ExitCode.REFUSED


class ConfigError(AlcaError):
    """Invalid configuration, always located by file and key path."""

    exit_code = ExitCode.CONFIG

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ):
        super().__init__(message, hint)
        self.file = file
        self.key = key
        self.line = line

    def located(self, *, file: str | None = None, key: str | None = None) -> ConfigError:
        """Fill in the location where the raiser did not know it."""
        if self.file is None and file is not None:
            self.file = file
        if key is not None:
            self.key = (
                f"{key}.{self.key}"
                if self.key and not self.key.startswith("[")
                else (f"{key}{self.key}" if self.key else key)
            )
        return self

    def render(self) -> str:
        where = "Error in " + (self.file or "configuration")
        if self.line is not None:
            where += f" (line {self.line})"
        if self.key:
            where += f", at {self.key}"
        text = f"{where}: {self.message}"
        if self.hint:
            text += "\n  Fix: " + self.hint.replace("\n", "\n       ")
        return text
