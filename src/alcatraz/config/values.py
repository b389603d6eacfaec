"""The value types of a configuration layer: a command, a mount, an env var, capabilities.

Kept apart from `layer` so that the field table (`alcatraz.config.fields`) and the value
checks can name them without importing the normaliser that uses the table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A container command and whether it extends the layer below."""

    command: str
    append: bool = False


@dataclass(frozen=True)
class Mount:
    """A host directory or file made visible in the container."""

    source: str  # absolute host path
    target: str  # absolute container path
    readonly: bool = False
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnvVar:
    """An environment variable: a literal or exactly `${NAME}` from the host."""

    value: str
    override_on_enter: bool = False


@dataclass(frozen=True)
class Caps:
    """Capabilities to drop and add, in `docker run` terms."""

    drop: tuple[str, ...]
    add: tuple[str, ...]

    @property
    def has_entries(self) -> bool:
        return bool(self.drop or self.add)
