"""Variable expansion rules of `.alca.toml`, kept in one place because they differ by key.

- `extends`/`includes` paths and mount sources: `$VAR` and `${VAR}`, strict (an undefined
  variable is an error), read at load time; `~` too for mount sources.
- `envs` values: a literal, or exactly `${NAME}` copied from the host when the container is
  created (and on every `alca run` with `override_on_enter`). Anything else that looks like
  interpolation (`hello${NAME}`, `$NAME`, `${A:-b}`) is an error, as the upstream docs
  promise but upstream never enforced.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from alcatraz.errors import ConfigError, quote

_NAME: Final = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE = re.compile(r"\$(?:\{(?P<braced>[^}]*)\}|(?P<bare>" + _NAME + r"))")
_VALID_NAME = re.compile(_NAME)
_ENV_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_-]*)\}")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def expand_strict(text: str, environ: Mapping[str, str]) -> str:
    """Expand `$VAR`/`${VAR}`; every variable must be defined."""
    if "${" in text and text.count("${") != len(re.findall(r"\$\{[^}]*\}", text)):
        raise ConfigError(
            f"unterminated variable reference in {quote(text)}",
            hint="close it with `}`, e.g. ${HOME}/presets",
        )
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced")
        if name is None:
            name = match.group("bare")
        elif not _VALID_NAME.fullmatch(name):
            raise ConfigError(
                f"unsupported variable reference {quote(match.group(0))} in {quote(text)}",
                hint="only $NAME and ${NAME} are expanded here (no defaults or nesting)",
            )
        if name not in environ:
            missing.append("$" + name)
            return ""
        return environ[name]

    result = _REFERENCE.sub(replace, text)
    if missing:
        names = ", ".join(dict.fromkeys(missing))
        raise ConfigError(
            f"undefined environment variable{'s' if len(missing) > 1 else ''} {names} "
            f"in {quote(text)}",
            hint=f"export {missing[0][1:]} before running alca, or write the path literally",
        )
    return result


def env_reference(value: str) -> str | None:
    """The host variable an `envs` value copies (`${NAME}` exactly), or None for a literal."""
    match = _ENV_REFERENCE.fullmatch(value)
    return match.group("name") if match else None


def check_env_value(value: str) -> None:
    """Reject `envs` values that look like interpolation but are not exactly `${NAME}`."""
    if env_reference(value) is not None:
        return
    if "\x00" in value:
        raise ConfigError("value contains a NUL character", hint="remove it")
    if re.search(r"\$(\{|[A-Za-z_])", value):
        raise ConfigError(
            f"unsupported interpolation in {quote(value)}: a value is either a literal or "
            "exactly ${NAME}",
            hint='copy a host variable with value = "${NAME}" alone; compose values in '
            "commands.enter instead",
        )


def check_env_key(key: str) -> None:
    """Environment names must be usable with `docker run -e NAME=VALUE`."""
    if not _ENV_KEY.fullmatch(key):
        raise ConfigError(
            f"invalid environment variable name {quote(key)}",
            hint="use letters, digits and underscores, not starting with a digit (e.g. MY_VAR)",
        )


def expand_env_value(value: str, environ: Mapping[str, str]) -> str | None:
    """Host value for an `envs` entry; None when it copies an unset variable (then skipped)."""
    name = env_reference(value)
    if name is None:
        return value
    return environ.get(name) or None
