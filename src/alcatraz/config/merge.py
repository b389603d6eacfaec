"""The pairwise merge of two layers, exactly as upstream (AGD-033/034, reference §2.2).

Pure and total: `merge(base, overlay)` never fails and never removes a value (an unset or
empty overlay field keeps the base). Each field's rule is its `Merge` in the field table
(`alcatraz.config.fields`); `docs/config-reference.md` lists them:

- `OVERRIDE`: the overlay wins when its value counts as set (`Presence`).
- `APPEND`: base, then overlay; the overlay's `key[i]` origins are renumbered.
- `UNION`: as `APPEND`, but None (no file sets it) stays None, and the key's own origin
  lists every file that sets it (an empty list has no `key[i]`).
- `PER_NAME`: a table of names; the overlay wins per name.
- `COMMAND`: an empty overlay keeps the base; `append = true` on a non-empty base joins
  with a space and consumes the flag; otherwise the overlay replaces and keeps its flag.
"""

from __future__ import annotations

from typing import Any

from alcatraz.config.fields import FIELDS, Field, Merge
from alcatraz.config.layer import Command, Layer

Origin = dict[str, tuple[str, ...]]


def _merge_command(base: Command | None, overlay: Command | None) -> Command | None:
    if overlay is None or not overlay.command:
        return base
    if overlay.append and base is not None and base.command:
        return Command(f"{base.command} {overlay.command}", append=False)
    return overlay


def _shift(origin: Origin, prefix: str, offset: int) -> Origin:
    """Renumber `prefix[i]` keys by `offset`, for appended lists."""
    shifted: Origin = {}
    for key, files in origin.items():
        if key.startswith(prefix + "["):
            index = int(key[len(prefix) + 1 : key.index("]")])
            shifted[f"{prefix}[{index + offset}]"] = files
    return shifted


def _merge_field(field: Field, base: Layer, overlay: Layer, origin: Origin) -> Any:
    """The merged value of one field; records in `origin` where it came from."""
    below, above = getattr(base, field.attr), getattr(overlay, field.attr)
    key = field.key
    if field.merge.appends:
        if below is None and above is None:
            return None
        origin.update(_shift(overlay.origin, key, len(below or ())))
        if field.merge is Merge.UNION and key in overlay.origin:
            origin[key] = tuple(dict.fromkeys(base.origin.get(key, ()) + overlay.origin[key]))
        return (below or ()) + (above or ())
    if field.merge is Merge.PER_NAME:
        for name in above:
            if f"{key}.{name}" in overlay.origin:
                origin[f"{key}.{name}"] = overlay.origin[f"{key}.{name}"]
        return {**below, **above}
    if field.merge is Merge.COMMAND:
        merged = _merge_command(below, above)
        if merged is not below and key in overlay.origin:
            # appended: both files contributed
            both = base.origin.get(key, ()) + overlay.origin[key]
            origin[key] = overlay.origin[key] if merged is above else both
        return merged
    if not field.presence.holds(above):
        return below
    if key in overlay.origin:
        origin[key] = overlay.origin[key]
    return above


def merge(base: Layer, overlay: Layer) -> Layer:
    """`overlay` on top of `base`; neither is modified."""
    result = Layer()
    origin = dict(base.origin)
    for field in FIELDS:
        setattr(result, field.attr, _merge_field(field, base, overlay, origin))
    result.origin = origin
    return result
