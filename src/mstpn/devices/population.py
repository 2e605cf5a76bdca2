"""Fit several devices, then describe their population: typical parameters and device-to-device spread.

Each device (its own trace files) is fitted on its own with :func:`mstpn.devices.fit.fit_traces`.
The model spreads ``g_min, g_max, a_st, a_lt, tau0`` log-normally around a nominal value with one
sigma, ``d2d_sigma`` (:meth:`mstpn.devices.physics.DeviceTensors.sample`). So the population's
nominal value of each of those is the geometric mean over the devices (the log-normal's median),
and ``d2d_sigma`` is the pooled standard deviation of their logarithms (ddof = 1), over the
parameters that every device's trace identified. The other fitted fields are the mean over devices.

A field's spread also holds each fit's own error. Since the model gives all five fields one sigma, a
field whose spread is more than ``OUTLIER_FACTOR`` times the median spread of the fields that every
fit identified is taken as
not identified by the traces (its fits scatter, the devices do not): it is left out of
``d2d_sigma``, its population value is the median over devices, and a note says so. The
characterise protocol, for one, pins g_min only loosely.

``c2c_sigma`` (one per-pulse sigma the model gives every device) pools the devices whose traces
identified it: the root mean square of their estimates. When no device's traces identified it, the
first device's value (its fit's base value) stays, with a note.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mstpn.atomic import atomic_write_text
from mstpn.devices.fit import FITTED_ALWAYS, FitError, FitResult, fit_traces
from mstpn.devices.params import SrTiO3Params
from mstpn.devices.trace import Trace

SPREAD = ("g_min", "g_max", "a_st", "a_lt", "tau0")
"""The fields the model gives a device-to-device spread (one log-normal sigma for all)."""
MIN_DEVICES = 3
OUTLIER_FACTOR = 3.0


@dataclass
class PopulationFit:
    """The population's parameters (``d2d_sigma`` from the data) and the fit of every device."""

    params: SrTiO3Params
    log_sigma: dict[str, float]
    """Standard deviation of ln(value) over the devices, per spread field that all devices identified."""
    devices: list[FitResult]
    notes: list[str]

    def to_json_dict(self) -> dict:
        """One parameter file (SrTiO3Params fields, readable by ``load_params``) with the per-field
        spreads under ``_population`` and every device's own fit under ``_device_fits``."""
        out: dict = dict(self.params.to_dict())
        out["_population"] = {"devices": len(self.devices), "log_sigma": self.log_sigma,
                             "notes": list(self.notes)}
        out["_device_fits"] = [d.to_json_dict() for d in self.devices]
        return out


def _identified(fit: FitResult, name: str) -> bool:
    return name not in fit.fixed and name not in fit.not_identified


def population_from_fits(fits: Sequence[FitResult]) -> PopulationFit:
    """The population of already fitted devices (at least three)."""
    if len(fits) < MIN_DEVICES:
        raise FitError(f"--population: need >= {MIN_DEVICES} devices (one trace file each), got {len(fits)}")
    notes: list[str] = []
    values: dict = {}
    spreads: dict[str, float] = {}
    for name in SPREAD:
        raw = np.array([getattr(f.params, name) for f in fits])
        if (raw > 0).all():
            logs = np.log(raw)
            values[name] = float(np.exp(logs.mean()))
        else:
            values[name] = float(np.median(raw))
        if not all(_identified(f, name) for f in fits):
            notes.append(f"{name}: fixed or not identified in some device's fit, so not part of d2d_sigma")
        elif (raw <= 0).any():
            notes.append(f"{name}: some device's fit put it at 0, so it is not part of d2d_sigma")
        else:
            spreads[name] = float(logs.std(ddof=1))
    if not spreads:
        raise FitError("--population: no spread parameter was identified by every device")
    typical = float(np.median(list(spreads.values())))
    log_sigma = {}
    for name, spread in spreads.items():
        if spread > OUTLIER_FACTOR * typical:
            values[name] = float(np.median([getattr(f.params, name) for f in fits]))
            notes.append(f"{name}: spreads {spread:.3g} in ln over the devices, over {OUTLIER_FACTOR:g}x "
                         f"the median spread of the identified fields ({typical:.3g}); the traces do not "
                         "identify it well enough, so it is not part of d2d_sigma and its value is the "
                         "median over devices")
        else:
            log_sigma[name] = spread
    for name in FITTED_ALWAYS:
        if name not in SPREAD:
            values[name] = float(np.mean([getattr(f.params, name) for f in fits]))
    values["d2d_sigma"] = math.sqrt(float(np.mean([s * s for s in log_sigma.values()])))
    c2c = [f.params.c2c_sigma for f in fits if _identified(f, "c2c_sigma")]
    if c2c:
        values["c2c_sigma"] = math.sqrt(float(np.mean(np.square(c2c))))
        if len(c2c) < len(fits):
            notes.append(f"c2c_sigma: pooled over the {len(c2c)} of {len(fits)} devices whose traces "
                         "identified it")
    else:
        notes.append(f"c2c_sigma: no device's traces identified it, so it stays at "
                     f"{fits[0].params.c2c_sigma:.3g}, the first fit's base value")
    params = fits[0].params.replace(**values)
    return PopulationFit(params, log_sigma, list(fits), notes)


def fit_population(devices: Sequence[Sequence[Trace]], **fit_options) -> PopulationFit:
    """Fit every device (a list of its traces) on its own, then their population."""
    fits = []
    for traces in devices:
        try:
            fits.append(fit_traces(traces, **fit_options))
        except FitError as exc:
            raise FitError(f"--population: device {len(fits) + 1} ({exc})") from None
    return population_from_fits(fits)


def write_population_json(result: PopulationFit, path: str | os.PathLike) -> None:
    """Write :meth:`PopulationFit.to_json_dict` atomically."""
    atomic_write_text(path, json.dumps(result.to_json_dict(), indent=2) + "\n")
