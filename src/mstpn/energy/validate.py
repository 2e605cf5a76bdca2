"""Range checks for the energy layer's dataclasses: one clear error naming the field and its range."""

from __future__ import annotations

import math
from dataclasses import fields

from mstpn.errors import UserError


class EnergyConfigError(UserError):
    """An energy-model constant or option is malformed or outside its allowed range."""


def check_fields(obj: object, ranges: dict[str, tuple[float, float, str]]) -> None:
    """Check that every named field is a finite number inside ``[lo, hi]``.

    ``ranges`` maps a field name to ``(lo, hi, unit)``; ``hi`` may be ``math.inf``. Fields not named
    are only checked to be finite numbers when they are numbers. Raises :class:`EnergyConfigError`
    with ``Class.field: must be in [lo, hi] unit, got value``.
    """
    cls = type(obj).__name__
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if f.name in ranges:
            lo, hi, unit = ranges[f.name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise EnergyConfigError(f"{cls}.{f.name}: expected a number, got {value!r}")
            if not math.isfinite(value) or not lo <= value <= hi:
                hi_text = "inf" if math.isinf(hi) else f"{hi:g}"
                raise EnergyConfigError(
                    f"{cls}.{f.name}: must be in [{lo:g}, {hi_text}] {unit}, got {value!r}".rstrip())
        elif isinstance(value, float) and not math.isfinite(value):
            raise EnergyConfigError(f"{cls}.{f.name}: must be finite, got {value!r}")
