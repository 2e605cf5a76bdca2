"""Parameters of the SrTiO3 compact memristor model, their validation, JSON I/O and presets.

All quantities are SI: siemens (S), volts (V), seconds (s), watts (W). The model equations that use
these fields live in :mod:`mstpn.devices.physics`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

from mstpn.errors import UserError

PARAM_NAMES = (
    "g_min", "g_max", "a_st", "a_lt", "v0", "t0", "beta", "v_th", "tau0", "v_tau",
    "p_leak_ref", "v_leak_ref", "d2d_sigma", "c2c_sigma", "read_sigma",
)


class ParamsError(UserError):
    """A device parameter is missing, malformed or out of its allowed range."""


@dataclass(frozen=True)
class SrTiO3Params:
    """Compact model of one non-filamentary SrTiO3 memristor (see DESIGN.md for the equations).

    Every field is a named, overridable number. ``srtio3_weilenmann2024()`` gives the reference
    values and says which of them are published facts and which are assumptions.
    """

    g_min: float = 1e-9
    """Lowest conductance the device reaches (S)."""
    g_max: float = 100e-9
    """Highest conductance the device reaches (S)."""
    a_st: float = 0.3e-9
    """Volatile (short-term) conductance change per unit of pulse drive (S)."""
    a_lt: float = 5e-9
    """Non-volatile (long-term) conductance change per unit of over-threshold drive (S)."""
    v0: float = 0.5
    """Voltage scale of the exponential pulse drive ``exp(|V|/v0) - 1`` (V)."""
    t0: float = 1e-3
    """Reference pulse width that gives ``a_st`` and ``a_lt`` their units; fixed, not fitted (s)."""
    beta: float = 0.5
    """Exponent of the pulse-width dependence ``(t_p/t0)**beta`` (dimensionless)."""
    v_th: float = 1.2
    """Pulse amplitude above which a pulse also changes the long-term conductance (V)."""
    tau0: float = 1.0
    """Decay time constant of the volatile conductance at zero bias (s)."""
    v_tau: float = 0.1303
    """Bias voltage scale of the time constant, ``tau = tau0 * exp(V_b / v_tau)`` (V)."""
    p_leak_ref: float = 4.3e-9
    """Idle power at conductance zero under bias ``v_leak_ref``; measured, PAPER.md (W)."""
    v_leak_ref: float = 0.6
    """Bias at which ``p_leak_ref`` was measured; leakage scales as ``V_b**2`` (V)."""
    d2d_sigma: float = 0.1
    """Device-to-device spread: log-normal sigma of a_st, a_lt, tau0, g_min, g_max (dimensionless)."""
    c2c_sigma: float = 0.05
    """Cycle-to-cycle noise: relative Gaussian sigma on every pulse's conductance change (1)."""
    read_sigma: float = 0.01
    """Read noise: relative Gaussian sigma on every read current (dimensionless)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParamsError(f"{f.name}: expected a number, got {value!r}")
            if not math.isfinite(value):
                raise ParamsError(f"{f.name}: must be finite, got {value!r}")
        positive = ("g_max", "v0", "t0", "beta", "tau0", "v_tau", "v_leak_ref")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ParamsError(f"{name}: must be > 0, got {getattr(self, name)!r}")
        non_negative = ("g_min", "a_st", "a_lt", "v_th", "p_leak_ref",
                        "d2d_sigma", "c2c_sigma", "read_sigma")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ParamsError(f"{name}: must be >= 0, got {getattr(self, name)!r}")
        if self.g_min >= self.g_max:
            raise ParamsError(f"g_min: must be < g_max ({self.g_max!r} S), got {self.g_min!r} S")
        for name in ("d2d_sigma", "c2c_sigma", "read_sigma"):
            if getattr(self, name) > 1.0:
                raise ParamsError(f"{name}: must be in [0, 1], got {getattr(self, name)!r}")

    def replace(self, **changes: float) -> SrTiO3Params:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def ideal(self) -> SrTiO3Params:
        """A copy with every source of randomness (d2d, c2c, read noise) switched off."""
        return self.replace(d2d_sigma=0.0, c2c_sigma=0.0, read_sigma=0.0)

    def tau(self, v_b: float) -> float:
        """Volatile decay time constant at bias ``v_b`` (s)."""
        return self.tau0 * math.exp(v_b / self.v_tau)

    def to_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in PARAM_NAMES}

    @classmethod
    def from_dict(cls, data: object, source: str = "parameters") -> SrTiO3Params:
        """Build from a mapping; unknown keys other than metadata are refused, missing keys default."""
        if not isinstance(data, dict):
            raise ParamsError(f"{source}: expected a JSON object with fields {', '.join(PARAM_NAMES)}")
        values = {}
        for key, value in data.items():
            if key in PARAM_NAMES:
                values[key] = value
            elif not key.startswith("_") and key not in METADATA_KEYS:
                raise ParamsError(f"{source}: unknown field {key!r}; allowed: {', '.join(PARAM_NAMES)}")
        return cls(**values)


METADATA_KEYS = ("residual_rel_rms", "fitted", "fixed", "traces", "notes", "preset")


def load_params(path: str | os.PathLike) -> SrTiO3Params:
    """Read parameters from a JSON file (as written by ``mstpn device fit``); clear error if invalid."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read parameter file ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParamsError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    try:
        return SrTiO3Params.from_dict(data, source=str(path))
    except ParamsError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ParamsError(f"{path}: {exc}") from None  # name the file for field errors too
    except TypeError as exc:
        raise ParamsError(f"{path}: {exc}") from None


def srtio3_weilenmann2024() -> SrTiO3Params:
    """Reference preset for the planar Cr/Ti-Pt on SrTiO3 device of Weilenmann et al. 2024.

    Published facts used: idle power 4.3 nW at G = 0 under 0.6 V bias (``p_leak_ref``,
    ``v_leak_ref``); conductances in the low tens of nS; the decay time constant grows strongly
    with positive bias, from milliseconds-seconds at negative bias to minutes and beyond at positive
    bias (a later paper of the group: ~41 s at -0.6 V vs ~3.7e4 s at +0.6 V for a slow component).

    Assumptions (calibrated to those facts, not measured): the range g_min = 1 nS, g_max = 100 nS;
    tau0 = 1 s and v_tau = 0.1303 V, so tau spans 10 ms at -0.6 V to 100 s at +0.6 V; the pulse
    drive constants a_st = 0.3 nS, a_lt = 5 nS, v0 = 0.5 V, beta = 0.5, v_th = 1.2 V with the
    reference width t0 = 1 ms; the variability sigmas d2d 10 %, c2c 5 %, read 1 %. Replace them with
    ``mstpn device fit`` for a real device.
    """
    return SrTiO3Params()
