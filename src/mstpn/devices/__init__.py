"""Memristor device models: parameters, physics, variability, energy, presets, fitting, protocols."""

from mstpn.devices.array import DeviceArray
from mstpn.devices.noise import NoiseSource
from mstpn.devices.params import (
    PARAM_NAMES,
    ParamsError,
    SrTiO3Params,
    load_params,
    srtio3_weilenmann2024,
)
from mstpn.devices.physics import DeviceState, DeviceTensors

__all__ = [
    "PARAM_NAMES", "DeviceArray", "DeviceState", "DeviceTensors", "NoiseSource", "ParamsError",
    "SrTiO3Params", "load_params", "srtio3_weilenmann2024",
]
