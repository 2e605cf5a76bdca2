"""Measurement protocols run on one simulated memristor, recorded as source-measure-unit traces.

Each protocol drives a :class:`~mstpn.devices.array.DeviceArray` (all physics comes from
:mod:`mstpn.devices.physics`) and records what an instrument would: samples of the applied voltage
and the measured current, following the convention of :mod:`mstpn.devices.trace`:

- a pulse of amplitude V and width t_p is two samples at V, at its start and its end (current G V),
  so a reader recovers the width as the time from the run's first to its last sample;
- every other sample is a read at the bias level held on the device (|V| < 0.5 V, never 0 V), where
  G = I / V; between two samples the device holds the bias of the later sample, or, leading into a
  pulse, of the earlier one; pulses are always separated by at least one read;
- sampling is non-uniform: after a pulse, reads are log-spaced in time (dense early, sparse late).

Noise (``noise=True``, seeded): the simulated device draws its own device-to-device variation
(``d2d_sigma`` on g_min, g_max, a_st, a_lt, tau0), and every pulse and read gets the model's
cycle-to-cycle and read noise; ``current_noise`` adds relative Gaussian instrument noise to every
current sample. :func:`simulated_device_params` gives the parameters of the device actually
simulated (the nominal ones with its d2d draw), which is what a fit of the trace should recover.
Time constants of a protocol (hold lengths, pulse intervals) follow the *nominal* tau(V_b), the way
an experimenter plans a measurement from a preliminary estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mstpn.devices import physics
from mstpn.devices.array import DeviceArray
from mstpn.devices.params import SrTiO3Params
from mstpn.devices.physics import DeviceTensors
from mstpn.devices.trace import READ_MIN_V, Trace
from mstpn.errors import UserError

PULSE_THRESHOLD_V = 0.5
"""Samples with |V| at or above this are pulses (V); the default of the trace reader."""
READ_V = 0.1
"""Read level of protocols that read at a fixed low voltage (V)."""
FAST_BIAS_V = -0.4
"""Bias with a fast decay, held between the pulses of LTP/LTD trains so the volatile part fades (V)."""
LEAD_S = 1e-4
"""Default time from the last read to the start of the next pulse (s)."""
MIN_DELAY_S = 1e-5
"""Shortest time from the end of a pulse to the first read after it (s)."""
META_BIASES_V = (-0.45, -0.3, -0.15, 0.15, 0.3, 0.45)
"""Bias levels of the meta-plasticity protocol (V). Reads happen at the bias, so every level is a
nonzero voltage (G = I/V) below the 0.5 V pulse threshold of the trace format."""
CHAR_BIASES_V = (-0.4, -0.2, 0.1, 0.2, 0.4)
"""Bias (= read) levels of the characterisation protocol (V)."""
CHAR_WIDTHS_S = (1e-4, 1e-3, 1e-2)
"""Pulse widths of the characterisation protocol (s)."""
CHAR_AMPLITUDE_FACTORS = (0.5, 0.75, 1.15, 1.35, 1.6)
"""Pulse amplitudes of the characterisation protocol, as multiples of v_th (at least 0.6 V)."""


@dataclass
class ProtocolRun:
    """The outcome of one protocol: the trace, the device behind it, and where things happened."""

    name: str
    """Protocol name (a key of :data:`PROTOCOLS`)."""
    trace: Trace
    """The recorded samples."""
    params: SrTiO3Params
    """Nominal parameters the protocol was run with."""
    device_params: SrTiO3Params
    """Parameters of the device actually simulated (nominal with its device-to-device draw)."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """Annotations: sample indices and settings of each step (pulse, decay, sweep, pair ...)."""


def _check_noise(current_noise: float) -> float:
    value = float(current_noise)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise UserError(f"current noise: must be a relative sigma in [0, 1], got {current_noise!r}")
    return value


def simulated_device_params(params: SrTiO3Params, seed: int = 0, noise: bool = True) -> SrTiO3Params:
    """Parameters of the single device a protocol simulates with ``seed`` (its d2d draw applied).

    With ``noise=False`` the device is nominal and this returns ``params`` unchanged.
    """
    return _device_params(DeviceArray(params, (1,), seed=seed, noise=False, variability=noise))


def _device_params(device: DeviceArray) -> SrTiO3Params:
    d = device.devices
    drawn = {name: float(getattr(d, name).reshape(-1)[0]) for name in ("g_min", "g_max", "a_st", "a_lt",
                                                                       "tau0")}
    if drawn == {name: getattr(device.params, name) for name in drawn}:
        return device.params
    return device.params.replace(**drawn)


class Recorder:
    """Drives one simulated device and records the samples a source-measure unit would take.

    ``g_frac`` places the starting (long-term) conductance at ``g_min + g_frac (g_max - g_min)`` of
    the simulated device. Time starts at 0 s; the first call must be a :meth:`read`.
    """

    def __init__(self, params: SrTiO3Params, *, seed: int = 0, noise: bool = True,
                 current_noise: float = 0.0, g_frac: float = 0.1) -> None:
        self.params = params
        self.current_noise = _check_noise(current_noise)
        self.device = DeviceArray(params, (1,), seed=seed, noise=noise, variability=noise)
        d = self.device.devices
        self.device.state = physics.initial_state(d, d.g_min + g_frac * d.span)
        self._rng = np.random.default_rng([int(seed), 7])
        self.t = 0.0
        """Time of the last sample (s)."""
        self.level: float | None = None
        """Bias level now held on the device (V); None before the first read."""
        self._time: list[float] = []
        self._volt: list[float] = []
        self._curr: list[float] = []
        self._last_was_pulse = False
        self.events: list[dict[str, Any]] = []

    @property
    def index(self) -> int:
        """Index the next sample will get."""
        return len(self._time)

    @property
    def conductance(self) -> float:
        """True (noise-free) conductance of the device now (S)."""
        return float(self.device.conductance.reshape(-1)[0])

    def _record(self, t: float, v: float, current: float) -> None:
        if self.current_noise > 0:
            current *= 1.0 + self.current_noise * float(self._rng.standard_normal())
        self._time.append(t)
        self._volt.append(v)
        self._curr.append(current)

    def _measure(self, v: float) -> float:
        current, _ = self.device.read(v)
        return float(current.reshape(-1)[0])

    def read(self, v_b: float, at: float) -> int:
        """Hold bias ``v_b`` (V) from the last sample until time ``at`` (s), then read there.

        Returns the sample's index.
        """
        if not READ_MIN_V <= abs(v_b) < PULSE_THRESHOLD_V:
            raise ValueError(f"read level {v_b} V: must satisfy {READ_MIN_V} <= |V| < {PULSE_THRESHOLD_V}")
        if self._time and not at > self.t:
            raise ValueError(f"read at {at} s is not after the last sample at {self.t} s")
        self.device.hold(v_b, at - self.t)
        self.t = float(at)
        self.level = float(v_b)
        index = self.index
        self._record(self.t, float(v_b), self._measure(v_b))
        self._last_was_pulse = False
        return index

    def decay(self, v_b: float, duration: float, n: int, first: float | None = None) -> tuple[int, int]:
        """``n`` reads at ``v_b`` log-spaced from ``first`` to ``duration`` (s) after the last sample.

        ``first`` defaults to ``duration / 1000`` (at least :data:`MIN_DELAY_S`) and is kept below
        ``duration / 10``. Returns the sample index range ``(start, stop)``.
        """
        start_t, start = self.t, self.index
        first = max(MIN_DELAY_S, duration * 1e-3) if first is None else first
        first = min(first, 0.1 * duration)
        for offset in np.geomspace(first, duration, n) if n > 1 else [duration]:
            self.read(v_b, start_t + float(offset))
        return start, self.index

    def pulse(self, v: float, t_p: float, at: float | None = None) -> int:
        """A pulse of amplitude ``v`` (V, sign = polarity) and width ``t_p`` (s), starting at ``at``.

        ``at`` defaults to :data:`LEAD_S` after the last sample; until then the device holds the
        current bias. Records the pulse's start and end samples; returns the start sample's index.
        """
        if self.level is None:
            raise ValueError("a protocol must read (set a bias) before its first pulse")
        if self._last_was_pulse:
            raise ValueError("two pulses need at least one read between them")
        if abs(v) < PULSE_THRESHOLD_V:
            raise ValueError(f"pulse amplitude {v} V is below the pulse threshold {PULSE_THRESHOLD_V} V")
        if not t_p > 0:
            raise ValueError(f"pulse width must be > 0 s, got {t_p}")
        start = self.t + LEAD_S if at is None else float(at)
        if not start > self.t:
            raise ValueError(f"pulse at {start} s is not after the last sample at {self.t} s")
        self.device.hold(self.level, start - self.t)
        index = self.index
        self._record(start, float(v), self._measure(v))
        self.device.pulse(v, t_p)
        self.t = start + t_p
        self._record(self.t, float(v), self._measure(v))
        self._last_was_pulse = True
        return index

    def finish(self, name: str) -> ProtocolRun:
        """The recorded trace with its annotations."""
        trace = Trace(np.array(self._time), np.array(self._volt), np.array(self._curr),
                      source=f"simulated {name}")
        return ProtocolRun(name, trace, self.params, _device_params(self.device), self.events)


# ------------------------------------------------------------------------------ pulse settings
def volatile_amplitude(p: SrTiO3Params) -> float:
    """Amplitude of the 'short-term' pulses: 0.85 v_th (at least 0.6 V), so below v_th (V)."""
    return max(0.6, 0.85 * p.v_th)


def train_amplitude(p: SrTiO3Params) -> float:
    """Amplitude of LTP/LTD train pulses: above v_th, sized so one 1 ms pulse moves ~6 % of the range."""
    x = 2.0 if p.a_lt <= 0 else min(2.0, max(0.2, 0.06 * (p.g_max - p.g_min) / p.a_lt))
    return max(0.6, p.v_th + x * p.v0)


def characterise_amplitudes(p: SrTiO3Params) -> list[float]:
    """Pulse amplitudes of :func:`characterise`: multiples of v_th below and above it, >= 0.6 V."""
    return sorted({round(max(0.6, f * p.v_th), 4) for f in CHAR_AMPLITUDE_FACTORS})


# ------------------------------------------------------------------------------ protocols
Protocol = Callable[..., ProtocolRun]


def retention(params: SrTiO3Params, *, seed: int = 0, noise: bool = True,
              current_noise: float = 0.0, levels: int = 3, pulses_per_level: int = 4) -> ProtocolRun:
    """Long-term memory: program three conductance levels, read each at 0.1 V for a long time."""
    rec = Recorder(params, seed=seed, noise=noise, current_noise=current_noise, g_frac=0.05)
    v, hold = train_amplitude(params), max(1e3, 100 * params.tau(READ_V))
    rec.read(READ_V, 1e-3)
    rec.read(READ_V, 2e-3)
    for level in range(levels):
        for k in range(pulses_per_level):
            if k:
                rec.read(READ_V, rec.t + 1e-3)
            rec.pulse(v, 1e-3)
        t_end = rec.t
        start, stop = rec.decay(READ_V, hold, 30, first=1e-3)
        rec.events.append({"kind": "retention", "level": level, "start": start, "stop": stop,
                           "t_pulse_end": t_end, "v_r": READ_V, "g_lt": float(rec.device.state.g_lt[0])})
    return rec.finish("retention")


def transmission(params: SrTiO3Params, *, seed: int = 0, noise: bool = True,
                 current_noise: float = 0.0, levels: int = 3) -> ProtocolRun:
    """Synaptic transmission: I-V read sweeps from -0.45 V to 0.45 V at three conductance levels."""
    rec = Recorder(params, seed=seed, noise=noise, current_noise=current_noise, g_frac=0.05)
    steps = [round(0.05 * k, 2) for k in range(1, 10)]
    volts = steps + [-s for s in steps]
    v, settle = train_amplitude(params), 10 * params.tau(READ_V)
    rec.read(READ_V, 1e-3)
    for level in range(levels):
        for k in range(4 if level else 0):
            if k:
                rec.read(READ_V, rec.t + 1e-3)
            rec.pulse(v, 1e-3)
        rec.decay(READ_V, settle, 8, first=1e-3)
        start = rec.index
        for volt in volts:
            rec.read(volt, rec.t + 1e-3)
        rec.events.append({"kind": "sweep", "level": level, "start": start, "stop": rec.index,
                           "g": rec.conductance})
    return rec.finish("transmission")


def ltp_ltd(params: SrTiO3Params, *, seed: int = 0, noise: bool = True, current_noise: float = 0.0,
            pulses: int = 30) -> ProtocolRun:
    """Long-term plasticity: 30 potentiating then 30 depressing pulses (1 ms), soft bounds visible.

    After each pulse the device rests at a fast-decay bias (-0.4 V) for 6 tau, so the last read before
    the next pulse shows the long-term level.
    """
    rec = Recorder(params, seed=seed, noise=noise, current_noise=current_noise, g_frac=0.02)
    v, rest = train_amplitude(params), 6 * params.tau(FAST_BIAS_V)
    rec.decay(FAST_BIAS_V, rest, 4)
    rec.events.append({"kind": "baseline", "read": rec.index - 1})
    for phase, sign in (("ltp", 1.0), ("ltd", -1.0)):
        for k in range(pulses):
            rec.pulse(sign * v, 1e-3)
            start, stop = rec.decay(FAST_BIAS_V, rest, 5)
            rec.events.append({"kind": "pulse", "phase": phase, "number": k + 1, "v": sign * v,
                               "t_p": 1e-3, "first_read": start, "settled_read": stop - 1})
    return rec.finish("ltp_ltd")


def stm(params: SrTiO3Params, *, seed: int = 0, noise: bool = True, current_noise: float = 0.0,
        v_b: float = READ_V, width: float = 1e-2) -> ProtocolRun:
    """Short-term memory: one sub-threshold pulse, then the volatile decay read at 0.1 V bias."""
    rec = Recorder(params, seed=seed, noise=noise, current_noise=current_noise, g_frac=0.05)
    tau = params.tau(v_b)
    base = rec.decay(v_b, 0.1 * tau, 5, first=0.01 * tau)
    v = volatile_amplitude(params)
    rec.pulse(v, width)
    t_end = rec.t
    start, stop = rec.decay(v_b, 10 * tau, 40, first=max(MIN_DELAY_S, 1e-3 * tau))
    rec.events.append({"kind": "stm", "v": v, "t_p": width, "v_b": v_b, "t_pulse_end": t_end,
                       "baseline": list(base), "start": start, "stop": stop})
    return rec.finish("stm")


def ppf(params: SrTiO3Params, *, seed: int = 0, noise: bool = True, current_noise: float = 0.0,
        v_b: float = READ_V, intervals: int = 10, width: float = 1e-2) -> ProtocolRun:
    """Paired-pulse facilitation: pairs of sub-threshold pulses at intervals 0.01-10 tau(0.1 V).

    Each pair: three baseline reads, pulse 1, a read shortly after it (A1), pulse 2 one interval after
    the end of pulse 1, a read at the same delay after it (A2), then 10 tau of recovery.
    """
    rec = Recorder(params, seed=seed, noise=noise, current_noise=current_noise, g_frac=0.05)
    tau, v = params.tau(v_b), volatile_amplitude(params)
    rec.read(v_b, 1e-3)
    for dt in tau * np.geomspace(0.01, 10.0, intervals):
        dt = float(dt)
        delay = min(1e-3 * tau, dt / 20)
        base = rec.read(v_b, rec.t + delay)
        rec.read(v_b, rec.t + delay)
        rec.read(v_b, rec.t + delay)
        rec.pulse(v, width)
        t1 = rec.t
        first = rec.read(v_b, t1 + delay)
        rec.pulse(v, width, at=t1 + dt)
        second = rec.read(v_b, rec.t + delay)
        rec.decay(v_b, 10 * tau, 6)
        rec.events.append({"kind": "pair", "interval_s": dt, "delay_s": delay, "v": v, "t_p": width,
                           "v_b": v_b, "baseline": [base, base + 3], "after_first": first,
                           "after_second": second})
    return rec.finish("ppf")


def metaplasticity(params: SrTiO3Params, *, seed: int = 0, noise: bool = True,
                   current_noise: float = 0.0, biases: tuple[float, ...] = META_BIASES_V,
                   width: float = 1e-2) -> ProtocolRun:
    """Meta-plasticity: the same sub-threshold pulse, then a decay held (and read) at each bias level."""
    rec = Recorder(params, seed=seed, noise=noise, current_noise=current_noise, g_frac=0.05)
    v = volatile_amplitude(params)
    rec.read(biases[0], 1e-3)
    for v_b in biases:
        tau = params.tau(v_b)
        b0 = rec.read(v_b, rec.t + 1e-3)
        rec.read(v_b, rec.t + 1e-3)
        rec.pulse(v, width)
        t_end = rec.t
        start, stop = rec.decay(v_b, 8 * tau, 30, first=max(MIN_DELAY_S, 1e-3 * tau))
        rec.events.append({"kind": "decay", "v_b": v_b, "v": v, "t_p": width, "t_pulse_end": t_end,
                           "baseline": [b0, b0 + 2], "start": start, "stop": stop})
    return rec.finish("metaplasticity")


def characterise(params: SrTiO3Params, *, seed: int = 0, noise: bool = True,
                 current_noise: float = 0.0, biases: tuple[float, ...] = CHAR_BIASES_V,
                 widths: tuple[float, ...] = CHAR_WIDTHS_S, train: int = 20) -> ProtocolRun:
    """Characterisation for fitting: decays at 5 biases, an amplitude x width x polarity grid, trains.

    1. A sub-threshold pulse, then a 6 tau decay, at each bias level (tau0, v_tau).
    2. Every amplitude of :func:`characterise_amplitudes` (below and above v_th) x every width, each
       as a potentiating then a depressing pulse, each followed by a 6 tau decay at the next bias level
       in turn (a_st, v0, beta, a_lt, v_th; the alternation keeps the conductance inside its range).
    3. A potentiating then a depressing train of ``train`` pulses at :func:`train_amplitude`, 1 ms,
       each followed by 4 tau at the fastest bias: the soft bounds (g_min, g_max).
    """
    rec = Recorder(params, seed=seed, noise=noise, current_noise=current_noise, g_frac=0.4)

    def pulse_then_decay(v: float, t_p: float, v_b: float, n: int, span: float, stage: str) -> None:
        tau = params.tau(v_b)
        rec.pulse(v, t_p)
        start, stop = rec.decay(v_b, span * tau, n, first=max(MIN_DELAY_S, 0.01 * tau))
        rec.events.append({"kind": "pulse", "stage": stage, "v": v, "t_p": t_p, "v_b": v_b,
                           "start": start, "stop": stop})

    rec.decay(biases[0], 0.5 * params.tau(biases[0]), 4)
    for v_b in biases:
        pulse_then_decay(volatile_amplitude(params), 1e-2, v_b, 24, 6.0, "decay")
    n = 0
    for amp in characterise_amplitudes(params):
        for t_p in widths:
            for sign in (1.0, -1.0):
                pulse_then_decay(sign * amp, t_p, biases[n % len(biases)], 12, 6.0, "grid")
                n += 1
    fast = min(biases, key=params.tau)
    v = train_amplitude(params)
    for sign in (1.0, -1.0):
        for _ in range(train):
            pulse_then_decay(sign * v, 1e-3, fast, 5, 4.0, "train")
    return rec.finish("characterise")


# --------------------------------------------------------------- more fitting protocols
FIT_TOP_CHANGE = 0.25
"""Fraction of the conductance range that the largest pulse of a fitting protocol moves G by (from
the middle of the range, volatile and long-term together)."""
FIT_TAU_RANGE_S = (1e-3, 300.0)
"""Time constants a fitting protocol plans its bias levels inside (s): slower than its pulses and
leads, faster than a day's measurement."""
FIT_BIAS_RANGE_V = (-0.45, 0.45)
"""Bias levels a fitting protocol may use (V), inside the read range of the trace format."""


def pulse_change(p: SrTiO3Params, v: float, t_p: float) -> float:
    """Noise-free change of G (S) that one potentiating pulse of ``v`` (V) and ``t_p`` (s) makes from
    the middle of the nominal range (:func:`physics.pulse_increments`)."""
    d = DeviceTensors.sample(p, (), dtype=torch.float64, variability=False)
    state = physics.initial_state(d, 0.5 * (p.g_min + p.g_max))
    dg_lt, dg_st = physics.pulse_increments(state, abs(v), t_p, d)
    return float(dg_lt + dg_st)


def amplitude_window(p: SrTiO3Params, t_p: float, top: float = FIT_TOP_CHANGE) -> tuple[float, float]:
    """(lowest, highest) pulse amplitude of a fitting protocol (V), planned from nominal parameters.

    Lowest: ``v_th - v0`` (at least 0.6 V), below the threshold. Highest: where one pulse of width
    ``t_p`` moves G by ``top`` of the range (:func:`pulse_change`), kept within ``v_th + 0.3 v0`` to
    ``v_th + 3 v0`` and at least 0.2 V above the lowest. Planned from the drive's own scales, so a
    steep device (small v0) is not driven into saturation the way multiples of v_th would drive it.
    """
    target = top * (p.g_max - p.g_min)
    a, b = p.v_th + 0.3 * p.v0, p.v_th + 3.0 * p.v0
    if pulse_change(p, a, t_p) >= target:
        hi = a
    elif pulse_change(p, b, t_p) <= target:
        hi = b
    else:
        for _ in range(40):  # the change grows with the amplitude: bisection
            mid = 0.5 * (a + b)
            a, b = (mid, b) if pulse_change(p, mid, t_p) < target else (a, mid)
        hi = 0.5 * (a + b)
    lo = max(0.6, p.v_th - p.v0)
    return lo, max(hi, lo + 0.2)


def spread_amplitudes(p: SrTiO3Params, lo: float, hi: float, below: tuple[float, ...],
                      above: tuple[float, ...], gap: float = 0.05) -> list[float]:
    """Amplitudes (V) at fractions ``below`` of the way from ``lo`` to v_th and ``above`` of the way
    from v_th to ``hi``, sorted, rounded to 0.1 mV and raised where needed to be ``gap`` apart."""
    raw = [lo + f * (p.v_th - lo) for f in below] + [p.v_th + f * (hi - p.v_th) for f in above]
    out: list[float] = []
    for a in sorted(raw):
        a = max(a, out[-1] + gap) if out else a
        out.append(round(a, 4))
    return out


def fit_biases(p: SrTiO3Params, n: int, tau_range: tuple[float, float] = FIT_TAU_RANGE_S,
               bias_range: tuple[float, float] = FIT_BIAS_RANGE_V) -> list[float]:
    """``n`` bias levels (V), evenly spread over the biases where the nominal tau(V_b) lies in ``tau_range``.

    What an experimenter does with a preliminary estimate of tau0 and v_tau: decays too fast to read
    or too slow to wait for are left out. Where that window is empty the whole ``bias_range`` is used.
    A level within 10 mV of 0 V is moved to +-10 mV (reads need a nonzero voltage).
    """
    lo = max(bias_range[0], p.v_tau * math.log(tau_range[0] / p.tau0))
    hi = min(bias_range[1], p.v_tau * math.log(tau_range[1] / p.tau0))
    if not hi > lo:
        lo, hi = bias_range
    levels = np.linspace(lo, hi, n) if n > 1 else np.array([(lo + hi) / 2])
    return [round(float(v if abs(v) >= 0.01 else math.copysign(0.01, v or 1.0)), 4) for v in levels]


def pulse_trains(params: SrTiO3Params, *, seed: int = 0, noise: bool = True, current_noise: float = 0.0,
                 biases: tuple[float, ...] | None = None, widths: tuple[float, ...] = (3e-4, 3e-3),
                 train: int = 6, reads: int = 16, span: float = 4.0) -> ProtocolRun:
    """Pulse trains: ``train`` identical potentiating then depressing pulses per amplitude x width.

    Four amplitudes, two below v_th and two above it up to the top of :func:`amplitude_window`;
    widths 0.3 and 3 ms; three bias levels (:func:`fit_biases`), one per block in turn. Each block
    starts with three reads at constant state; after every pulse the device is read at a fixed
    sampling rate, ``reads`` samples over ``span`` tau. The repeated identical pulses let a fit
    estimate the cycle-to-cycle noise.
    """
    rec = Recorder(params, seed=seed, noise=noise, current_noise=current_noise, g_frac=0.3)
    biases = tuple(biases or fit_biases(params, 3))
    lo, hi = amplitude_window(params, max(widths))
    rec.read(biases[0], 1e-3)
    block = 0
    for amp in spread_amplitudes(params, lo, hi, (0.0, 0.6), (0.45, 1.0)):
        for t_p in widths:
            v_b = biases[block % len(biases)]
            block += 1
            dt = span * params.tau(v_b) / reads
            for _ in range(3):
                rec.read(v_b, rec.t + dt)
            for sign in (1.0, -1.0):
                for k in range(train):
                    rec.pulse(sign * amp, t_p)
                    t_end, start = rec.t, rec.index
                    for j in range(1, reads + 1):
                        rec.read(v_b, t_end + j * dt)
                    rec.events.append({"kind": "pulse", "stage": "train", "number": k + 1, "v": sign * amp,
                                       "t_p": t_p, "v_b": v_b, "start": start, "stop": rec.index})
    return rec.finish("pulse_trains")


def random_pulses(params: SrTiO3Params, *, seed: int = 0, noise: bool = True, current_noise: float = 0.0,
                  pulses: int = 100, biases: tuple[float, ...] | None = None,
                  widths: tuple[float, float] = (2e-4, 5e-3), reads: int = 10,
                  jitter: float = 0.8) -> ProtocolRun:
    """Random pulses: amplitude, width, polarity and bias drawn anew for every pulse; jittered reads.

    Amplitudes uniform over :func:`amplitude_window`, widths log-uniform in ``widths``,
    the polarity biased towards the middle of the range (the experimenter watches the reads), the
    bias one of four levels (:func:`fit_biases`). After each pulse ``reads`` reads log-spaced from
    0.02 to 5 tau, each time jittered at random by up to ``jitter`` / 2 of the log spacing; the time
    from the last read to the pulse is jittered too.
    """
    rng = np.random.default_rng([int(seed), 11])
    rec = Recorder(params, seed=seed, noise=noise, current_noise=current_noise, g_frac=0.5)
    biases = tuple(biases or fit_biases(params, 4))
    lo, hi = amplitude_window(params, max(widths))
    step = math.log(250.0) / max(reads - 1, 1)
    rec.read(biases[0], 1e-3)
    for k in range(pulses):
        g_now = rec._curr[-1] / rec._volt[-1]
        frac = (g_now - params.g_min) / (params.g_max - params.g_min)
        sign = 1.0 if rng.random() < min(max(1.0 - frac, 0.1), 0.9) else -1.0
        amp = float(rng.uniform(lo, hi))
        t_p = float(math.exp(rng.uniform(math.log(widths[0]), math.log(widths[1]))))
        v_b = float(biases[rng.integers(len(biases))])
        tau = params.tau(v_b)
        rec.pulse(sign * amp, t_p, at=rec.t + LEAD_S * float(rng.uniform(0.5, 2.0)))
        t_end, start = rec.t, rec.index
        offs = np.geomspace(0.02 * tau, 5.0 * tau, reads) * np.exp(jitter * step * (rng.random(reads) - 0.5))
        for off in offs:
            rec.read(v_b, t_end + max(float(off), MIN_DELAY_S))
        rec.events.append({"kind": "pulse", "stage": "random", "number": k + 1, "v": sign * amp, "t_p": t_p,
                           "v_b": v_b, "start": start, "stop": rec.index})
    return rec.finish("random_pulses")


def width_sweep(params: SrTiO3Params, *, seed: int = 0, noise: bool = True, current_noise: float = 0.0,
                biases: tuple[float, ...] | None = None, widths: tuple[float, ...] = (5e-5, 5e-4, 5e-3),
                repeats: int = 3, reads: int = 10,
                span: float = 4.0, rest: float = 6.0) -> ProtocolRun:
    """Short pulses, coarse sampling: 4 amplitudes x 3 widths (50 us - 5 ms) x both polarities, repeated.

    Two amplitudes below v_th, two above it up to the top of :func:`amplitude_window`. Five bias
    levels (:func:`fit_biases`) in turn. Before every pulse the device rests ``rest`` tau at the
    coming bias and is read four times (constant state); after it, ``reads`` reads linearly spaced up
    to ``span`` tau (a coarse, fixed sampling rate per level).
    """
    rec = Recorder(params, seed=seed, noise=noise, current_noise=current_noise, g_frac=0.4)
    biases = tuple(biases or fit_biases(params, 5))
    lo, hi = amplitude_window(params, max(widths))
    amplitudes = spread_amplitudes(params, lo, hi, (0.3, 0.8), (0.5, 1.0))
    rec.read(biases[0], 1e-3)
    n = 0
    for _ in range(repeats):
        for t_p in widths:
            for amp in amplitudes:
                for sign in (1.0, -1.0):
                    v_b = biases[n % len(biases)]
                    n += 1
                    tau = params.tau(v_b)
                    for _ in range(4):
                        rec.read(v_b, rec.t + rest * tau / 4)
                    rec.pulse(sign * amp, t_p)
                    t_end, start = rec.t, rec.index
                    for j in range(1, reads + 1):
                        rec.read(v_b, t_end + j * span * tau / reads)
                    rec.events.append({"kind": "pulse", "stage": "sweep", "v": sign * amp, "t_p": t_p,
                                       "v_b": v_b, "start": start, "stop": rec.index})
    return rec.finish("width_sweep")


PROTOCOLS: dict[str, Protocol] = {
    "retention": retention,
    "transmission": transmission,
    "ltp_ltd": ltp_ltd,
    "stm": stm,
    "ppf": ppf,
    "metaplasticity": metaplasticity,
    "characterise": characterise,
    "pulse_trains": pulse_trains,
    "random_pulses": random_pulses,
    "width_sweep": width_sweep,
}
"""Every protocol by name; each is called ``f(params, *, seed, noise, current_noise) -> ProtocolRun``."""


def run_protocol(name: str, params: SrTiO3Params, seed: int = 0, noise: bool = True,
                 current_noise: float = 0.0) -> ProtocolRun:
    """Run protocol ``name`` on one simulated device; unknown names raise :class:`UserError`."""
    try:
        protocol = PROTOCOLS[name]
    except KeyError:
        raise UserError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None
    return protocol(params, seed=int(seed), noise=noise, current_noise=current_noise)


def simulate_protocol(name: str, params: SrTiO3Params, seed: int = 0, noise: bool = True,
                      current_noise: float = 0.0) -> Trace:
    """The trace of protocol ``name`` (see :data:`PROTOCOLS`) on one simulated device.

    ``noise`` switches the device's variability, cycle-to-cycle and read noise; ``current_noise`` is
    extra relative Gaussian noise on every current sample. Same seed, same trace.
    """
    return run_protocol(name, params, seed=seed, noise=noise, current_noise=current_noise).trace
