"""Source-measure-unit traces: samples of applied voltage and measured current over time.

A trace is a CSV with header ``time_s,voltage_v,current_a``. Samples with |V| at or above a pulse
threshold are pulses; the rest are bias/read phases where G = I / V.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLUMNS = ("time_s", "voltage_v", "current_a")


@dataclass
class Trace:
    """One trace: parallel float64 arrays of time (s), applied voltage (V) and measured current (A)."""

    time_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray

    def __len__(self) -> int:
        return len(self.time_s)
