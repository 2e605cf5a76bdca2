"""Figures of merit of the synaptic functions, computed from measured (or simulated) reads.

Plain numpy/scipy on arrays of times (s), conductances (S), voltages (V) and currents (A); nothing here
knows the device model, so the same functions judge a simulation and a measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit


@dataclass(frozen=True)
class DecayFit:
    """G(t) = g_inf + amplitude exp(-t / tau), fitted to reads after a pulse."""

    g_inf: float
    """Level the decay tends to (S)."""
    amplitude: float
    """Volatile part at t = 0, the end of the pulse (S)."""
    tau: float
    """Decay time constant (s)."""
    r2: float
    """Coefficient of determination of the fit (1)."""

    def __call__(self, t: np.ndarray) -> np.ndarray:
        return self.g_inf + self.amplitude * np.exp(-np.asarray(t) / self.tau)


def r_squared(data: np.ndarray, model: np.ndarray) -> float:
    """1 - SS_res / SS_tot of ``model`` against ``data`` (1 for a perfect fit)."""
    data, model = np.asarray(data, float), np.asarray(model, float)
    ss_tot = float(np.sum((data - data.mean()) ** 2))
    ss_res = float(np.sum((data - model) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def fit_decay(t: np.ndarray, g: np.ndarray) -> DecayFit:
    """Fit a single exponential decay to conductances ``g`` (S) read at times ``t`` (s) after a pulse.

    Weighted as relative errors (read noise is relative); the start guess takes the last read as the
    level and the 1/e crossing as tau. Needs at least four reads.
    """
    t, g = np.asarray(t, float), np.asarray(g, float)
    if len(t) < 4:
        raise ValueError("a decay fit needs at least four reads")
    scale = float(np.median(np.abs(g))) or 1.0
    y = g / scale
    g_inf0, amp0 = y[-1], y[0] - y[-1]
    below = np.flatnonzero(np.abs(y - g_inf0) < abs(amp0) / math.e)
    tau0 = float(t[below[0]]) if below.size and t[below[0]] > 0 else float(np.median(t[t > 0]))

    def model(tt: np.ndarray, c: float, a: float, log_tau: float) -> np.ndarray:
        return c + a * np.exp(-tt / np.exp(log_tau))

    (c, a, log_tau), _ = curve_fit(model, t, y, p0=(g_inf0, amp0, math.log(tau0)), sigma=np.abs(y),
                                   maxfev=5000)
    fit = DecayFit(float(c * scale), float(a * scale), float(math.exp(log_tau)), 0.0)
    return DecayFit(fit.g_inf, fit.amplitude, fit.tau, r_squared(g, fit(t)))


def ppf_index(g_base: float, g_after_first: float, g_after_second: float) -> float:
    """Paired-pulse facilitation index A2 / A1 x 100 (%), A = read after a pulse minus baseline."""
    a1 = g_after_first - g_base
    return float(100.0 * (g_after_second - g_base) / a1) if a1 != 0 else float("nan")


def fit_ppf(intervals: np.ndarray, index: np.ndarray) -> tuple[float, float]:
    """Fit PPF(dt) = 100 + c exp(-dt / tau) (%); returns (c in %, tau in s)."""
    dt, y = np.asarray(intervals, float), np.asarray(index, float) - 100.0
    guess = float(dt[np.argmin(np.abs(y - y[0] / math.e))])

    def model(x: np.ndarray, c: float, log_tau: float) -> np.ndarray:
        return c * np.exp(-x / np.exp(log_tau))

    (c, log_tau), _ = curve_fit(model, dt, y, p0=(y[0], math.log(guess)), maxfev=5000)
    return float(c), float(math.exp(log_tau))


def nonlinearity(g: np.ndarray) -> float:
    """Nonlinearity of a pulse-train response: max |(G_n - G_0)/(G_N - G_0) - n/N| (0 = linear).

    ``g`` holds the conductance before the train and after each of its N pulses. A soft-bounded
    (saturating) train gives a positive value; the ideal linear synapse gives 0.
    """
    g = np.asarray(g, float)
    n = len(g) - 1
    if n < 1 or g[-1] == g[0]:
        return float("nan")
    frac = (g - g[0]) / (g[-1] - g[0])
    return float(np.max(np.abs(frac - np.arange(n + 1) / n)))


def linear_read(v: np.ndarray, i: np.ndarray) -> tuple[float, float]:
    """Ohmic fit I = G V through the origin: returns (G in S, R^2 of the line)."""
    v, i = np.asarray(v, float), np.asarray(i, float)
    g = float(np.dot(v, i) / np.dot(v, v))
    return g, r_squared(i, g * v)


def log_drift(t: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """Retention drift from a straight-line fit of G against log10(t) over the reads.

    Returns (relative change of the fitted line from the first to the last read time, relative
    change per decade of time); the line averages out read noise.
    """
    t, g = np.asarray(t, float), np.asarray(g, float)
    if len(t) < 2:
        return float("nan"), float("nan")
    slope, icpt = np.polyfit(np.log10(t), g, 1)
    g_first = icpt + slope * math.log10(t[0])
    return (float(slope * math.log10(t[-1] / t[0]) / g_first), float(slope / g_first))
