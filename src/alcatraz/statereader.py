"""Reading one object of `state.json`: errors that name the file and the key path.

The readers of `alcatraz.statefile`'s records share it; split from there to keep each module
small. Standard library only and cheap, like `statefile` (`alca run` imports both).
"""

from typing import Any, Final

from alcatraz.errors import AlcaError

#: The fix every state file error suggests (the file is alcatraz's, never the project's).
STATE_FIX: Final = (
    "move the file aside and run 'alca up' to start afresh ('alca cleanup' then removes "
    "the old sandbox)"
)


class StateFileError(AlcaError):
    """A state file alcatraz cannot read: not JSON, a key of the wrong type, too new."""


def type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), "a list" if isinstance(value, list) else "an object"
    )


class Reader:
    """Reads the keys of one JSON object, naming the file and the key path in errors."""

    __slots__ = ("data", "file", "prefix")

    def __init__(self, data: object, file: str, prefix: str = "") -> None:
        if not isinstance(data, dict):
            where = f"key {prefix.rstrip('.')}" if prefix else "the file"
            raise StateFileError(
                f"state file {file}: {where} should be an object, not {type_name(data)}",
                hint=STATE_FIX,
            )
        self.data: dict[str, Any] = data
        self.file = file
        self.prefix = prefix

    def fail(self, key: str, expected: str) -> StateFileError:
        value = self.data.get(key)
        return StateFileError(
            f"state file {self.file}: key {self.prefix}{key} should be {expected}, "
            f"not {type_name(value)}",
            hint=STATE_FIX,
        )

    def text(self, key: str, default: str = "") -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.fail(key, "a string")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if self.data.get(key) is not None else None

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def number(self, key: str, default: int) -> int:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, "a whole number")
        return value

    def numbers(self, key: str, length: int) -> tuple[int, ...] | None:
        """A list of exactly `length` whole numbers (device/inode pairs), or None."""
        value = self.data.get(key)
        if value is None:
            return None
        if not (isinstance(value, list) and len(value) == length and all(is_int(v) for v in value)):
            raise self.fail(key, f"a list of {length} whole numbers")
        return tuple(value)

    def texts(self, key: str) -> tuple[str, ...] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "a list of strings")
        return tuple(value)

    def table(self, key: str) -> dict[str, Any] | None:
        """An object whose values belong to another module (the drift snapshot)."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, "an object")
        return value

    def text_table(self, key: str) -> dict[str, str]:
        value = self.table(key) or {}
        if not all(isinstance(v, str) for v in value.values()):
            raise self.fail(key, "an object of strings")
        return dict(value)

    def child(self, key: str) -> "Reader | None":
        value = self.data.get(key)
        if value is None:
            return None
        return Reader(value, self.file, f"{self.prefix}{key}.")


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
