"""Fit the SrTiO3 compact model (DESIGN.md) to measured source-measure-unit traces.

Method, for one or more traces at once (every conductance model evaluation goes through
:mod:`mstpn.devices.physics`; nothing here re-implements the physics):

1. Segment each trace into pulses and bias/read phases (:func:`mstpn.devices.trace.segment`).
2. Decay. Inside a phase at bias V_b the model reads G(t) = g_lt + g_st exp(-(t - t_ref)/tau(V_b)),
   with t_ref the end of the event before the phase. For a trial tau every phase's (g_lt, g_st) is a
   weighted linear least-squares problem, solved in closed form for all phases at once (variable
   projection). A profile fit per bias level gives tau there (shown in the figure, and the start);
   one joint fit of ln tau = ln tau0 + V_b / v_tau over all phases of all levels gives ``tau0`` and
   ``v_tau``, with standard errors that must be small enough, else the fit refuses.
3. With tau(V_b) from that fit, each phase gives its long-term level and volatile part with standard
   errors; across each pulse their differences are the pulse's observed dg_lt and dg_st, and the
   phase before gives the conductance the pulse started from.
4. Pulse constants ``a_st, v0, beta, a_lt, v_th`` and the range ``g_min, g_max`` (through the soft
   bound) from those increments, each weighted by its error (standard error of the phase fits and
   cycle-to-cycle noise): starting values from the data, a seeded global search (differential
   evolution), then robust local least squares (:mod:`mstpn.devices.fit_pulses`). Only one polarity
   of pulses cannot tell the far end of the range from the pulse strength: that end is then fixed at
   the extreme conductance the trace visited (a note says so).
5. Noise from the data (:mod:`mstpn.devices.fit_noise`): ``read_sigma`` from repeated reads at
   constant state (else the scatter around the phase fits, with a note); ``c2c_sigma`` from repeated
   identical pulses, and the pulse constants refined once more with it; where the trace cannot
   identify it the base value is kept, listed as fixed, with a note. ``t0``, ``p_leak_ref``,
   ``v_leak_ref`` and ``d2d_sigma`` are copied from the base parameters.
6. The fitted model is run over each whole trace from the first phase's state (pulses and holds as
   recorded) and compared with every read: ``residual_rel_rms``. The same model with the estimated
   noise, simulated over the trace, gives the residual noise alone leaves: the fit reports whether it
   reached that noise floor and warns when not (``noise_floor``).

Conductances are handled relative to the median read (``g_scale``) inside the optimisers.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import least_squares, minimize_scalar

from mstpn.atomic import atomic_write_text
from mstpn.devices import physics
from mstpn.devices.fit_noise import NoiseEstimate, NoiseFloor, c2c_noise, noise_floor, read_noise
from mstpn.devices.fit_pulses import (
    Z95,
    PulseFit,
    PulseModel,
    Transitions,
    fit_pulses,
    pulse_groups,
    widen_intervals,
)
from mstpn.devices.fit_pulses import clusters as _clusters
from mstpn.devices.params import ParamsError, SrTiO3Params
from mstpn.devices.physics import DeviceState, DeviceTensors
from mstpn.devices.trace import BiasPhase, Event, Pulse, Trace, TraceError, segment

FITTED_ALWAYS = ("a_st", "a_lt", "v0", "beta", "v_th", "tau0", "v_tau", "read_sigma")
COPIED = ("t0", "p_leak_ref", "v_leak_ref", "d2d_sigma", "c2c_sigma")
MIN_AMPLITUDES = 3
MIN_WIDTHS = 2
MIN_LEVELS = 2
MIN_PULSES = 8
IDENTIFIED_SPAN = 10.0
"""A positive parameter whose 95 % interval spans more than this factor is reported as not identified."""
FLOOR_COPIES = 16
"""Noisy copies of the fitted model simulated over the traces for the noise-floor check."""
FLOOR_SEED = 0
VAR_CAP = 1e6
"""Largest variance of a phase's volatile part kept (units of g_scale squared): a phase whose reads
all come long after the decay does not resolve it, and its weight is then nil anyway."""


class FitError(TraceError):
    """The traces cannot identify the model's parameters (too few pulses, amplitudes, bias levels)."""


@dataclass
class TauLevel:
    """The decay time constant found at one bias level."""

    v_b: float
    """Bias level (V)."""
    tau: float
    """Fitted time constant (s); NaN when the phases did not resolve it."""
    ln_tau_se: float
    """Standard error of ln tau (dimensionless); inf when unresolved."""
    n_phases: int
    """Phases with at least three reads at this level."""


@dataclass
class TraceFit:
    """Data and fitted model of one trace, for plotting and residuals."""

    source: str
    read_t: np.ndarray
    """Times of the reads (s)."""
    read_g: np.ndarray
    """Measured conductance of the reads (S)."""
    model_g: np.ndarray
    """Fitted model's conductance at the reads, run over the whole trace (S)."""
    curve_t: np.ndarray
    """Times of the model curve: the reads plus both sides of every pulse (s)."""
    curve_g: np.ndarray
    """Model conductance along ``curve_t`` (S)."""
    pulse_t: np.ndarray
    """Start time of each pulse (s)."""
    pulse_v: np.ndarray
    """Amplitude of each pulse (V)."""


@dataclass
class FitResult:
    """Fitted parameters, what was fitted and fixed, the residual, and the data behind them."""

    params: SrTiO3Params
    residual_rel_rms: float
    """RMS over all reads of (G_model - G_data) / G_data, the model run over whole traces."""
    phase_rel_rms: float
    """The same for the per-phase decay fits (the read noise floor)."""
    fitted: list[str]
    fixed: list[str]
    notes: list[str]
    sources: list[str]
    levels: list[TauLevel]
    traces: list[TraceFit]
    increments: dict[str, np.ndarray] = field(repr=False)
    """Per usable pulse: v, t_p, g_before, dg_st / dg_lt observed (``*_obs``), their errors
    (``*_se``) and the fitted model's prediction (``*_fit``), all SI."""
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    """95 % confidence interval of every fitted parameter (SI)."""
    correlations: list[tuple[str, str, float]] = field(default_factory=list)
    """The strongest correlations between fitted pulse constants: (name, name, r)."""
    not_identified: list[str] = field(default_factory=list)
    """Fitted parameters whose interval is unbounded or spans over IDENTIFIED_SPAN."""
    noise: dict[str, NoiseEstimate] = field(default_factory=dict)
    """What the traces say about ``read_sigma`` and ``c2c_sigma`` (estimate, interval, identified)."""
    noise_floor: NoiseFloor | None = None
    """Whether the residual is what the estimated noise alone would leave."""

    def to_json_dict(self) -> dict:
        """The JSON object ``mstpn device fit`` writes; :meth:`SrTiO3Params.from_dict` reads it back."""
        out: dict = dict(self.params.to_dict())
        out["residual_rel_rms"] = float(self.residual_rel_rms)
        out["fitted"] = list(self.fitted)
        out["fixed"] = list(self.fixed)
        out["traces"] = list(self.sources)
        out["notes"] = list(self.notes)
        out["_phase_rel_rms"] = float(self.phase_rel_rms)
        out["_tau_by_bias"] = [
            {"v_b": lv.v_b, "tau_s": None if math.isnan(lv.tau) else lv.tau,
             "ln_tau_se": None if not math.isfinite(lv.ln_tau_se) else lv.ln_tau_se,
             "n_phases": lv.n_phases} for lv in self.levels]
        out["_pulses_used"] = len(self.increments["v"])
        out["_intervals_95"] = {k: [_finite_or_none(lo), _finite_or_none(hi)]
                                for k, (lo, hi) in self.intervals.items()}
        out["_correlations"] = [[a, b, round(r, 3)] for a, b, r in self.correlations]
        out["_not_identified"] = list(self.not_identified)
        out["_noise"] = {name: est.to_json() for name, est in self.noise.items()}
        if self.noise_floor is not None:
            out["_noise_floor"] = self.noise_floor.to_json()
        return out


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


# ------------------------------------------------------------------------------------------ helpers
@dataclass
class _Phase:
    """One bias phase with reads, in the optimisers' normalised units."""

    trace: int
    event: int
    level: float
    t_ref: float
    t_end: float
    offs: np.ndarray
    g: np.ndarray
    w: np.ndarray
    """Weight of each read: 1 / (expected conductance)^2, so residuals are relative."""
    a: float = math.nan
    b: float = math.nan
    var_a: float = math.inf
    var_b: float = math.inf
    cov_ab: float = 0.0


def _fmt_list(values: Sequence[float], unit: str, fmt: str = ".3g") -> str:
    return ", ".join(f"{x:{fmt}} {unit}" for x in values)


def _decay(v_b: np.ndarray | float, dt: np.ndarray | float, tau0: np.ndarray | float, v_tau: float,
           base: SrTiO3Params) -> np.ndarray:
    """Fraction of the volatile part left after ``dt`` at bias ``v_b``: :func:`physics.decay_factor`
    of a device with time constant ``tau0`` (any shape, broadcasting) and ``v_tau``."""
    f64 = torch.float64
    ranges = (torch.tensor(getattr(base, n), dtype=f64) for n in ("g_min", "g_max", "a_st", "a_lt"))
    d = DeviceTensors(*ranges, tau0=torch.as_tensor(tau0, dtype=f64), params=base.replace(v_tau=float(v_tau)))
    return physics.decay_factor(torch.as_tensor(v_b, dtype=f64), torch.as_tensor(dt, dtype=f64), d).numpy()


def _phase_solve(x: np.ndarray, g: np.ndarray, w: np.ndarray, starts: np.ndarray
                 ) -> tuple[np.ndarray, ...]:
    """Per-phase weighted fit g = a + b x for rows of trial bases ``x`` (m, N): a, b, Sw, mx, Cxx, SSR."""
    def red(v: np.ndarray) -> np.ndarray:
        return np.add.reduceat(v, starts, axis=-1)

    sw = red(w)
    sx, sg = red(w * x), red(w * g)
    sxx, sxg, sgg = red(w * x * x), red(w * x * g), red(w * g * g)
    mx, mg = sx / sw, sg / sw
    cxx = np.maximum(sxx - sx * mx, 0.0) + 1e-12 * sw
    cxg = sxg - sx * mg
    cgg = sgg - sg * mg
    b = cxg / cxx
    a = mg - b * mx
    ssr = np.maximum(cgg - b * cxg, 0.0)
    return a, b, sw, mx, cxx, ssr


def _pack(phases: list[_Phase]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    offs = np.concatenate([p.offs for p in phases])
    g = np.concatenate([p.g for p in phases])
    w = np.concatenate([p.w for p in phases])
    sizes = np.array([len(p.g) for p in phases])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return offs, g, w, starts


def _fit_level_tau(phases: list[_Phase], base: SrTiO3Params, n_grid: int = 48
                   ) -> tuple[float, float, float]:
    """Profile fit of one level's tau: (tau, ln tau standard error, SSR at the optimum).

    A trial tau enters as the time constant at V_b = 0 of a device held at 0 V."""
    offs, g, w, starts = _pack(phases)
    positive = offs[offs > 0]
    spans = np.array([p.offs[-1] for p in phases])
    if positive.size == 0 or spans.max() <= 0:
        return math.nan, math.inf, math.nan
    lo, hi = math.log(0.1 * positive.min()), math.log(10.0 * spans.max())
    dof = max(len(g) - 2 * len(phases), 1)

    def ssr(log_tau: np.ndarray) -> np.ndarray:
        out = []
        for chunk in np.array_split(np.atleast_1d(log_tau), max(1, len(np.atleast_1d(log_tau)) // 8)):
            x = _decay(0.0, offs[None, :], np.exp(chunk)[:, None], base.v_tau, base)
            out.append(_phase_solve(x, g, w, starts)[-1].sum(axis=-1))
        return np.concatenate(out)

    grid = np.linspace(lo, hi, n_grid)
    s = ssr(grid)
    k = int(np.argmin(s))
    if k <= 1 or k >= n_grid - 2:
        return math.nan, math.inf, float(s[k])
    res = minimize_scalar(lambda u: float(ssr(np.array([u]))[0]), bounds=(grid[k - 1], grid[k + 1]),
                          method="bounded", options={"xatol": 1e-5})
    u, s0 = float(res.x), float(res.fun)
    h = 0.02
    curv = (ssr(np.array([u + h]))[0] + ssr(np.array([u - h]))[0] - 2 * s0) / (2 * h * h)
    sigma2 = max(s0, 1e-300) / dof
    se = math.sqrt(sigma2 / curv) if curv > 0 else math.inf
    return math.exp(u), se, s0


def _fail(sources: list[str], message: str) -> FitError:
    return FitError(f"{', '.join(sources)}: {message}")


# ---------------------------------------------------------------------------------------- stages
def _collect(traces: Sequence[Trace], pulse_threshold: float
             ) -> tuple[list[list[Event]], list[_Phase], list[tuple[int, int, Pulse]]]:
    all_events, phases, pulses = [], [], []
    for ti, trace in enumerate(traces):
        events = segment(trace, pulse_threshold)
        all_events.append(events)
        for ei, ev in enumerate(events):
            if isinstance(ev, Pulse):
                pulses.append((ti, ei, ev))
            elif len(ev.time_s):
                t_ref = events[ei - 1].t_end if ei > 0 else ev.t_start
                phases.append(_Phase(ti, ei, ev.level, t_ref, ev.t_end, ev.time_s - t_ref,
                                     ev.conductance, np.ones(len(ev.time_s))))
    return all_events, phases, pulses


def _check_pulses(pulses: list[tuple[int, int, Pulse]], sources: list[str]) -> None:
    amps = np.array([abs(p.amplitude) for _, _, p in pulses])
    groups = _clusters(amps, np.maximum(0.01, 0.01 * amps))
    if len(groups) < MIN_AMPLITUDES:
        found = _fmt_list([float(amps[g].mean()) for g in groups], "V")
        raise _fail(sources, f"need pulses at >= {MIN_AMPLITUDES} amplitudes to fit a_st, v0, a_lt and "
                    f"v_th, found {len(groups)}" + (f" ({found})" if groups else ""))
    widths = np.array([p.width for _, _, p in pulses])
    groups = _clusters(widths, 0.05 * widths)
    if len(groups) < MIN_WIDTHS:
        raise _fail(sources, f"need pulses of >= {MIN_WIDTHS} widths to fit beta, found {len(groups)} "
                    f"({_fmt_list([float(widths[g].mean()) for g in groups], 's')})")


def _level_groups(phases: list[_Phase], sources: list[str], level_tol: float) -> list[list[_Phase]]:
    levels = np.array([p.level for p in phases])
    groups = [[phases[i] for i in sorted(g)] for g in _clusters(levels, level_tol)]
    if len(groups) < MIN_LEVELS:
        found = _fmt_list([float(np.mean([p.level for p in g])) for g in groups], "V")
        raise _fail(sources, f"need >= {MIN_LEVELS} bias levels to fit tau0 and v_tau, found {len(groups)}"
                    + (f" ({found})" if groups else ""))
    return groups


def _fit_tau(groups: list[list[_Phase]], sources: list[str], base: SrTiO3Params
             ) -> tuple[float, float, list[TauLevel], dict[str, tuple[float, float]]]:
    """tau per bias level (profile fits), then tau0 and v_tau by one joint fit over all phases; with
    their 95 % intervals (from the joint fit's covariance of ln tau0 and 1 / v_tau)."""
    levels = []
    for group in groups:
        usable = [p for p in group if len(p.g) >= 3]
        v_b = float(np.mean([p.level for p in group]))
        if not usable:
            levels.append(TauLevel(v_b, math.nan, math.inf, 0))
            continue
        tau, se, _ = _fit_level_tau(usable, base)
        if not math.isfinite(se) or se > 0.5:
            tau, se = math.nan, math.inf
        levels.append(TauLevel(v_b, tau, se, len(usable)))
    with_reads = [lv for lv in levels if lv.n_phases]
    if len(with_reads) < MIN_LEVELS:
        raise _fail(sources, f"need decays (>= 3 reads after a pulse) at >= {MIN_LEVELS} bias levels, "
                    f"found {len(with_reads)}"
                    + (f" ({_fmt_list([lv.v_b for lv in with_reads], 'V')})" if with_reads else ""))
    ok = [lv for lv in levels if math.isfinite(lv.ln_tau_se)]
    if len(ok) >= MIN_LEVELS:  # start from a weighted line through the resolved levels
        v = np.array([lv.v_b for lv in ok])
        y = np.log([lv.tau for lv in ok])
        wts = 1.0 / np.maximum(np.array([lv.ln_tau_se for lv in ok]), 1e-3) ** 2
        design = np.stack([np.ones_like(v), v], axis=1)
        coef = np.linalg.solve(design.T @ (design * wts[:, None]), design.T @ (wts * y))
    else:
        coef = np.array([math.log(base.tau0), 1.0 / base.v_tau])
    coef, se = _joint_tau([p for g in groups for p in g if len(p.g) >= 3], coef, base)
    if coef[1] <= 1e-6:
        raise _fail(sources, "the decay time constant does not grow with bias "
                    f"(ln tau = {coef[0]:.3g} + {coef[1]:.3g} V_b / V); "
                    "the model needs tau = tau0 exp(V_b / v_tau) with v_tau > 0")
    if se[0] > 0.3 or se[1] > 0.3 * coef[1]:
        raise _fail(sources, f"the decays do not fix tau0 and v_tau (standard errors {se[0]:.2g} in ln tau0, "
                    f"{100 * se[1] / coef[1]:.0f} % in v_tau): need more, longer or denser reads after "
                    f"pulses at >= {MIN_LEVELS} bias levels")
    slope = (coef[1] - Z95 * se[1], coef[1] + Z95 * se[1])
    intervals = {"tau0": (math.exp(coef[0] - Z95 * se[0]), math.exp(coef[0] + Z95 * se[0])),
                 "v_tau": (1.0 / slope[1], 1.0 / slope[0] if slope[0] > 0 else math.inf)}
    return float(math.exp(coef[0])), float(1.0 / coef[1]), levels, intervals


def _joint_tau(phases: list[_Phase], coef: np.ndarray, base: SrTiO3Params
               ) -> tuple[np.ndarray, np.ndarray]:
    """Fit ln tau = c0 + c1 V_b jointly over every phase (each with its own g_lt, g_st projected out).

    Returns (c0, c1) and their standard errors.
    """
    offs, g, w, starts = _pack(phases)
    sizes = np.diff(np.append(starts, len(g)))
    index = np.repeat(np.arange(len(phases)), sizes)
    v_b = np.repeat([p.level for p in phases], sizes)
    sqw = np.sqrt(w)

    def residuals(c: np.ndarray) -> np.ndarray:
        x = _decay(v_b, offs, math.exp(c[0]), 1.0 / c[1], base)
        a, b, *_ = _phase_solve(x, g, w, starts)
        return sqw * (g - a[index] - b[index] * x)

    lower = np.array([-np.inf, 1e-7])  # v_tau > 0 is part of the model; a bound hit is reported
    res = least_squares(residuals, np.maximum(coef, 2 * lower), bounds=(lower, np.inf), x_scale="jac",
                        xtol=1e-10, ftol=1e-10)
    dof = max(len(g) - 2 * len(phases) - 2, 1)
    sigma2 = 2.0 * res.cost / dof
    try:
        cov = sigma2 * np.linalg.inv(res.jac.T @ res.jac)
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    except np.linalg.LinAlgError:
        se = np.array([math.inf, math.inf])
    return res.x, se


def _phase_fits(phases: list[_Phase], decay: Callable[[np.ndarray, np.ndarray], np.ndarray],
                reweight: bool = False) -> float:
    """Fit (a, b) of every phase with the fitted tau(V_b); returns the pooled relative read sigma.

    ``reweight`` sets every read's weight from the fitted conductance there (floored at a fifth of
    the phase's median read) instead of storing the fit."""
    fit = [p for p in phases if len(p.g) >= 2]
    if not fit:
        return math.nan
    offs, g, w, starts = _pack(fit)
    x = decay(np.concatenate([np.full(len(p.g), p.level) for p in fit]), offs)
    a, b, sw, mx, cxx, ssr = _phase_solve(x, g, w, starts)
    if reweight:
        index = np.repeat(np.arange(len(fit)), [len(p.g) for p in fit])
        model = a[index] + b[index] * x
        for p, m in zip(fit, np.split(model, starts[1:]), strict=True):
            floor = 0.2 * float(np.median(np.abs(p.g)))
            p.w = 1.0 / np.maximum(np.abs(m), max(floor, 1e-12)) ** 2
        return math.nan
    dof = len(g) - 2 * len(fit)
    sigma = math.sqrt(ssr.sum() / dof) if dof > 0 else math.nan
    s2 = sigma * sigma if math.isfinite(sigma) else 0.0
    for k, p in enumerate(fit):
        p.a, p.b = float(a[k]), float(b[k])
        p.var_a = s2 * (1.0 / sw[k] + mx[k] ** 2 / cxx[k])
        p.var_b = min(s2 / cxx[k], VAR_CAP)
        p.cov_ab = -s2 * mx[k] / cxx[k] if p.var_b < VAR_CAP else 0.0
    return sigma


def _increments(all_events: list[list[Event]], phases: list[_Phase],
                decay: Callable[[np.ndarray, np.ndarray], np.ndarray]
                ) -> tuple[dict[str, np.ndarray], Transitions]:
    """Observed increments of every pulse with fitted phases on both sides, and every transition
    between consecutive fitted phases (across one pulse, or none) with the measurement covariance
    of their observed (volatile, long-term) changes (:class:`fit_pulses.Transitions`)."""
    by_event = {(p.trace, p.event): p for p in phases if math.isfinite(p.a)}
    rows, links = [], []
    for ti, events in enumerate(all_events):
        for ei, ev in enumerate(events):
            if isinstance(ev, Pulse):
                before, after = by_event.get((ti, ei - 1)), by_event.get((ti, ei + 1))
                if before is None or after is None:
                    continue
                x = float(decay(before.level, ev.t_start - before.t_ref))
                links.append((len(rows), x, before, after))
                gst_b = before.b * x
                rows.append((ev.amplitude, ev.width, before.a + gst_b, gst_b,
                             after.b - gst_b, math.sqrt(after.var_b + x * x * before.var_b),
                             after.a - before.a, math.sqrt(after.var_a + before.var_a)))
            elif (ti, ei) in by_event and (ti, ei + 1) in by_event:  # no pulse between: G unchanged
                prev, nxt = by_event[(ti, ei)], by_event[(ti, ei + 1)]
                links.append((-1, float(decay(prev.level, nxt.t_ref - prev.t_ref)), prev, nxt))
    names = ("v", "t_p", "g_before", "g_st_before", "dg_st_obs", "dg_st_se", "dg_lt_obs", "dg_lt_se")
    arr = np.array(rows, dtype=np.float64).reshape(-1, len(names))
    return {n: arr[:, k] for k, n in enumerate(names)}, _transitions(links)


def _transitions(links: list[tuple[int, float, _Phase, _Phase]]) -> Transitions:
    """Observed changes across the transitions, interleaved (volatile, long-term), and their banded
    measurement covariance: transition t reads (b_N - x b_P, a_N - a_P) of its phases P -> N, and
    consecutive transitions share a phase (N of one is P of the next), so the band is 3 wide."""
    n = len(links)
    obs, band = np.zeros(2 * n), np.zeros((4, 2 * n))
    for t, (_, x, prev, nxt) in enumerate(links):
        obs[2 * t], obs[2 * t + 1] = nxt.b - x * prev.b, nxt.a - prev.a
        band[0, 2 * t] = nxt.var_b + x * x * prev.var_b
        band[0, 2 * t + 1] = nxt.var_a + prev.var_a
        band[1, 2 * t] = nxt.cov_ab + x * prev.cov_ab
        if t + 1 < n and links[t + 1][2] is nxt:
            x1 = links[t + 1][1]
            band[1, 2 * t + 1] = -x1 * nxt.cov_ab
            band[2, 2 * t] = -x1 * nxt.var_b
            band[2, 2 * t + 1] = -nxt.var_a
            band[3, 2 * t] = -nxt.cov_ab
    return Transitions(np.array([k for k, *_ in links], dtype=np.int64), obs, band)


# ------------------------------------------------------------------------------ pulse constants
def _range_freedom(v: np.ndarray, g_lo: float, g_hi: float, g_scale: float, notes: list[str]
                   ) -> tuple[list[str], dict[str, float]]:
    """Free pulse constants and the fixed range ends: one polarity of pulses only cannot tell the
    far end of the range from the pulse strength, so that end is fixed at the extreme visited."""
    free = ["a_st", "v0", "beta", "a_lt", "v_th"]
    fixed: dict[str, float] = {}
    if (v < 0).any():
        free.append("g_min")
    else:
        fixed["g_min"] = g_lo * g_scale
        notes.append("g_min fixed at the lowest conductance the traces visited: no depressing pulses")
    if (v > 0).any():
        free.append("g_max")
    else:
        fixed["g_max"] = g_hi * g_scale
        notes.append("g_max fixed at the highest conductance the traces visited: no potentiating pulses")
    return free, fixed


def _tau_sensitivity(all_events: list[list[Event]], phases: list[_Phase], inc: dict[str, np.ndarray],
                     tau0: float, v_tau: float, intervals: dict[str, tuple[float, float]], base: SrTiO3Params,
                     g_scale: float, g_lo: float, g_hi: float, free: list[str], fixed: dict[str, float],
                     c2c: float, pf: PulseFit) -> np.ndarray:
    """Variance the uncertainty of tau0 and v_tau adds to every free pulse constant (optimiser units).

    The pulse stage is conditioned on tau(V_b): the phases are refitted with ln tau0, then 1 / v_tau,
    moved by one standard error, the increments taken again and the constants refined from the fit;
    the squared shifts add up (the correlation of the two is neglected). Phases are restored."""
    saved = [(p.a, p.b, p.var_a, p.var_b, p.cov_ab) for p in phases]
    model = PulseModel(inc, g_scale, base, free, fixed)
    u0 = model.vector(pf.values)
    se_ln = (math.log(intervals["tau0"][1]) - math.log(intervals["tau0"][0])) / (2 * Z95)
    v_lo, v_hi = intervals["v_tau"]
    se_slope = (1.0 / v_lo - 1.0 / v_hi) / (2 * Z95) if math.isfinite(v_hi) else math.nan
    total = np.zeros(len(free))
    trials = [(tau0 * math.exp(se_ln), v_tau)]
    if math.isfinite(se_slope):
        trials.append((tau0, 1.0 / (1.0 / v_tau + se_slope)))
    for t0_, vt_ in trials:
        def decay(v_b, dt, t0_=t0_, vt_=vt_):
            return _decay(v_b, dt, t0_, vt_, base)

        _phase_fits(phases, decay)
        moved, links = _increments(all_events, phases, decay)
        if len(moved["v"]) == len(inc["v"]):
            shifted = fit_pulses(moved, links, g_scale, base, g_lo, g_hi, free, fixed, c2c, start=pf.values)
            total += (model.vector(shifted.values) - u0) ** 2
    for p, (a, b, va, vb, cab) in zip(phases, saved, strict=True):
        p.a, p.b, p.var_a, p.var_b, p.cov_ab = a, b, va, vb, cab
    return total


def _c2c_estimate(inc: dict[str, np.ndarray], g_scale: float, base: SrTiO3Params, pf: PulseFit
                  ) -> NoiseEstimate:
    """c2c_sigma from the repeated identical pulses of the traces (:func:`fit_noise.c2c_noise`), the
    model increments from the pulse fit; increments the range clips are left out."""
    model = PulseModel(inc, g_scale, base, [], pf.values)
    ul, us = model.unit(pf.values)
    ul, us = ul * pf.values["a_lt"] / g_scale, us * pf.values["a_st"] / g_scale
    fits = [pf.dg_st, pf.dg_lt]
    usable = [np.abs(f - u) <= 0.01 * np.abs(u) for f, u in zip(fits, (us, ul), strict=True)]
    return c2c_noise(pulse_groups(inc["v"], inc["t_p"]), [inc["dg_st_obs"], inc["dg_lt_obs"]],
                     [inc["dg_st_se"], inc["dg_lt_se"]], fits, usable)


def _not_identified(params: SrTiO3Params, intervals: dict[str, tuple[float, float]]) -> list[str]:
    """Fitted parameters whose 95 % interval is unbounded or spans more than IDENTIFIED_SPAN."""
    out = []
    for name, (lo, hi) in intervals.items():
        if name == "c2c_sigma":  # in the intervals only when the traces identified it
            continue
        if not (math.isfinite(lo) and math.isfinite(hi)):
            out.append(name)
        elif name == "v_th":  # a voltage, may sit at 0: compare the width with the value's scale
            if hi - lo > max(abs(getattr(params, name)), params.v0):
                out.append(name)
        elif lo <= 0 or hi / lo > IDENTIFIED_SPAN:
            out.append(name)
    return out



# ------------------------------------------------------------------------------ whole-trace model
def simulate_reads(events: list[Event], params: SrTiO3Params, g_lt0: float | np.ndarray,
                   g_st0: float | np.ndarray,
                   t_start: float | None = None, *, rng: np.random.Generator | None = None,
                   copies: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the model over a segmented trace as recorded; the model's G at every read.

    The device starts at time ``t_start`` (default: the first event's start) in state
    (``g_lt0``, ``g_st0``) (S). Returns (G at the reads, curve times, curve G) where the curve adds
    both sides of every pulse. Noise-free by default; with ``rng``, ``copies`` independent noisy runs
    at once (the model's cycle-to-cycle noise on every pulse and read noise on every read, sigmas
    from ``params``), and the G arrays get a leading axis of that length; ``g_lt0`` and ``g_st0`` may
    then be arrays of one start per copy.
    Holds follow the trace convention (:mod:`mstpn.devices.trace`): the interval before a sample is
    at that sample's bias, the interval leading into a pulse at the bias before it.
    """
    d = DeviceTensors.sample(params, (), dtype=torch.float64, variability=False)
    shape = (copies,) if rng is not None else ()
    state = DeviceState(*(torch.as_tensor(np.broadcast_to(np.asarray(g, dtype=np.float64), shape).copy())
                          for g in (g_lt0, g_st0)))
    t_cur = t_start if t_start is not None else (events[0].t_start if events else 0.0)
    v_hold = 0.0
    reads, curve_t, curve_g = [], [], []

    def normal(*size: int) -> torch.Tensor | None:
        return None if rng is None else torch.from_numpy(rng.standard_normal(shape + size))

    for ev in events:
        if isinstance(ev, Pulse):
            state, _ = physics.hold(state, v_hold, ev.t_start - t_cur, d)
            curve_t.append(np.array([ev.t_start]))
            curve_g.append(physics.conductance(state).reshape(*shape, 1).numpy())
            eps = None if rng is None else (normal(), normal())
            state, _ = physics.apply_pulse(state, ev.amplitude, ev.width, d, c2c_eps=eps)
            curve_t.append(np.array([ev.t_end]))
            curve_g.append(physics.conductance(state).reshape(*shape, 1).numpy())
        else:
            if len(ev.time_s):
                k = physics.decay_factor(ev.level, torch.as_tensor(ev.time_s - t_cur), d)
                at = DeviceState(state.g_lt[..., None] + 0 * k, state.g_st[..., None] * k)
                # relative read noise, as physics.read gives it (read at 1 V: current = G)
                g = physics.read(at, 1.0, 0.0, d, read_eps=normal(len(ev.time_s)))[0].numpy()
                reads.append(g)
                curve_t.append(ev.time_s)
                curve_g.append(g)
            state, _ = physics.hold(state, ev.level, ev.t_end - t_cur, d)
            v_hold = ev.level
        t_cur = ev.t_end
    cat = lambda xs: np.concatenate(xs, axis=-1) if xs else np.zeros((*shape, 0))
    return cat(reads), cat(curve_t), cat(curve_g)


def _initial_state(first: _Phase, g_scale: float) -> tuple[float, float]:
    """(g_lt, g_st) at ``first.t_ref`` (S), from the first phase with a fit of a trace.

    A volatile part is kept only where that phase shows one (3 standard errors); otherwise the
    long-term level is the mean of its reads, far less noisy than a two-parameter fit of a few reads.
    """
    if abs(first.b) > 3.0 * math.sqrt(first.var_b):
        return first.a * g_scale, first.b * g_scale
    return float(first.g.mean()) * g_scale, 0.0


def _rel_rms(model: np.ndarray, data: np.ndarray) -> float:
    floor = 1e-3 * float(np.median(np.abs(data))) if len(data) else 1.0
    rel = (model - data) / np.maximum(np.abs(data), floor)
    return float(np.sqrt(np.mean(rel**2))) if len(rel) else math.nan


# ----------------------------------------------------------------------------------------- main
def fit_traces(traces: Sequence[Trace], *, base: SrTiO3Params | None = None, t0: float = 1e-3,
               pulse_threshold: float = 0.5, level_tol: float = 0.02) -> FitResult:
    """Fit the compact model to one or more traces (see the module docstring for the method).

    ``base`` supplies the parameters that are not fitted (default: the SrTiO3 preset); ``t0`` is the
    reference pulse width (s) that gives ``a_st`` and ``a_lt`` their units. Raises :class:`FitError`
    naming what is missing when the traces cannot identify the parameters.
    """
    if not traces:
        raise FitError("no traces given")
    sources = [t.source for t in traces]
    if not (math.isfinite(t0) and t0 > 0):
        raise FitError(f"t0: must be a reference pulse width > 0 s, got {t0!r}")
    base = (base or SrTiO3Params()).replace(t0=float(t0))
    all_events, phases, pulses = _collect(traces, pulse_threshold)
    _check_pulses(pulses, sources)
    groups = _level_groups(phases, sources, level_tol)
    reads = np.concatenate([p.g for p in phases])
    g_scale = float(np.median(np.abs(reads)))
    if not g_scale > 0:
        raise _fail(sources, "no positive conductance among the reads (G = I / V)")
    for p in phases:
        p.g = p.g / g_scale
        med = float(np.median(np.abs(p.g)))
        p.w = np.full(len(p.g), 1.0 / med**2 if med > 0 else 1.0)

    tau0, v_tau, levels, _ = _fit_tau(groups, sources, base)

    def decay(v_b: np.ndarray | float, dt: np.ndarray | float) -> np.ndarray:
        return _decay(v_b, dt, tau0, v_tau, base)

    # read noise is relative to G(t), which can change a lot within a phase: weight each read by
    # its fitted conductance and fit the decays once more
    _phase_fits(phases, decay, reweight=True)
    tau0, v_tau, levels, intervals = _fit_tau(groups, sources, base)
    sigma = _phase_fits(phases, decay)
    inc, links = _increments(all_events, phases, decay)
    if len(inc["v"]) < MIN_PULSES:
        raise _fail(sources, f"need >= {MIN_PULSES} pulses with reads right before and after them, "
                    f"found {len(inc['v'])}")
    amps = np.abs(inc["v"])
    n_amp = len(_clusters(amps, np.maximum(0.01, 0.01 * amps)))
    if n_amp < MIN_AMPLITUDES:
        raise _fail(sources, f"need pulses at >= {MIN_AMPLITUDES} amplitudes with reads right before and "
                    f"after them, found {n_amp}")
    fitted_g = [p.a + p.b * decay(p.level, p.offs) for p in phases if math.isfinite(p.a)]
    g_all = np.concatenate(fitted_g)
    g_lo, g_hi = float(g_all.min()), float(g_all.max())
    if g_lo <= 0:
        g_lo = float(np.min(g_all[g_all > 0])) if (g_all > 0).any() else 1e-6
    notes: list[str] = []
    free, fixed_g = _range_freedom(inc["v"], g_lo, g_hi, g_scale, notes)
    fit_phases = [p for p in phases if math.isfinite(p.a)]
    read_est = read_noise(fit_phases, [p.b * decay(p.level, p.offs) for p in fit_phases], sigma,
                          sum(len(p.g) - 2 for p in fit_phases))
    pf = fit_pulses(inc, links, g_scale, base, g_lo, g_hi, free, fixed_g, base.c2c_sigma)
    c2c_est = _c2c_estimate(inc, g_scale, base, pf)
    if c2c_est.identified:  # weights with the trace's own c2c noise, then estimate it once more
        pf = fit_pulses(inc, links, g_scale, base, g_lo, g_hi, free, fixed_g, c2c_est.value,
                        start=pf.values)
        again = _c2c_estimate(inc, g_scale, base, pf)
        c2c_est = again if again.identified else c2c_est
    tau_var = _tau_sensitivity(all_events, phases, inc, tau0, v_tau, intervals, base, g_scale, g_lo, g_hi,
                               free, fixed_g, c2c_est.value if c2c_est.identified else base.c2c_sigma, pf)
    intervals.update(widen_intervals(pf, PulseModel(inc, g_scale, base, free, fixed_g), tau_var))
    c2c = c2c_est.value if c2c_est.identified else base.c2c_sigma
    if c2c_est.identified:
        intervals["c2c_sigma"] = c2c_est.interval
    else:
        lo, hi = c2c_est.interval
        span = f", 95 % interval {lo:.3g}..{hi:.3g}" if math.isfinite(lo) else ""
        notes.append(f"c2c_sigma kept at the base value {base.c2c_sigma:.3g}: the traces cannot identify "
                     f"it ({c2c_est.source}{span})")
    read_sigma = min(max(read_est.value, 0.0), 1.0) if math.isfinite(read_est.value) else base.read_sigma
    if math.isfinite(read_est.value):  # else read_sigma is the base's, not fitted
        intervals["read_sigma"] = read_est.interval
    if not read_est.identified:
        notes.append(f"read_sigma from the scatter of the reads around the phase fits: {read_est.source}")
    try:
        params = base.replace(tau0=tau0, v_tau=v_tau, read_sigma=read_sigma, c2c_sigma=c2c, **pf.values)
    except ParamsError as exc:
        raise _fail(sources, f"the fit gave invalid parameters ({exc})") from None
    dl, ds = pf.dg_lt, pf.dg_st
    increments = {k: (v * g_scale if k.startswith(("g_", "dg_")) else v) for k, v in inc.items()}
    increments["dg_st_fit"], increments["dg_lt_fit"] = ds * g_scale, dl * g_scale

    trace_fits, model_all, data_all, noisy_all = [], [], [], []
    rng = np.random.default_rng(FLOOR_SEED)
    first = {}
    for p in phases:
        if math.isfinite(p.a) and p.trace not in first:
            first[p.trace] = p
    for ti, (trace, events) in enumerate(zip(traces, all_events, strict=True)):
        p0 = first.get(ti)
        if p0 is None:
            continue
        g_lt0, g_st0 = _initial_state(p0, g_scale)
        events = events[p0.event:]  # the model runs from the first phase that fixes its state
        model_g, curve_t, curve_g = simulate_reads(events, params, g_lt0, g_st0, t_start=p0.t_ref)
        data_g = np.concatenate([ev.conductance for ev in events if isinstance(ev, BiasPhase)])
        read_t = np.concatenate([ev.time_s for ev in events if isinstance(ev, BiasPhase)])
        pulse_ev = [ev for ev in events if isinstance(ev, Pulse)]
        trace_fits.append(TraceFit(trace.source, read_t, data_g, model_g, curve_t, curve_g,
                                   np.array([e.t_start for e in pulse_ev]),
                                   np.array([e.amplitude for e in pulse_ev])))
        model_all.append(model_g)
        data_all.append(data_g)
        # the copies start where the first phase's fit puts the device, within its standard errors
        starts = [g + math.sqrt(var) * g_scale * rng.standard_normal(FLOOR_COPIES) if g else 0.0
                  for g, var in ((g_lt0, p0.var_a), (g_st0, p0.var_b))]
        noisy_all.append(simulate_reads(events, params, *starts, t_start=p0.t_ref, rng=rng,
                                        copies=FLOOR_COPIES)[0])
    model_cat, noisy = np.concatenate(model_all), np.concatenate(noisy_all, axis=-1)
    residual = _rel_rms(model_cat, np.concatenate(data_all))
    floor = noise_floor(residual, np.array([_rel_rms(model_cat, copy) for copy in noisy]), read_sigma, c2c,
                        c2c_est.identified, sigma, read_est)
    notes.extend(f"warning: {w}" for w in floor.warnings)
    fixed = [n for n in COPIED if n != "c2c_sigma" or not c2c_est.identified] + list(fixed_g)
    fitted = ([n for n in ("g_min", "g_max") if n in free] + list(FITTED_ALWAYS)
              + (["c2c_sigma"] if c2c_est.identified else []))
    loose = _not_identified(params, intervals)
    if np.abs(dl).max() < 3.0 * float(np.median(inc["dg_lt_se"])) and {"a_lt", "v_th"} & set(loose):
        notes.append("no long-term change above the noise: a_lt and v_th are not determined")
    if loose:
        notes.append(f"not identified by these traces (95 % interval unbounded or over "
                     f"{IDENTIFIED_SPAN:g}x wide): {', '.join(loose)}")
    return FitResult(params, residual, sigma, fitted, fixed, notes, sources, levels, trace_fits,
                     increments, intervals, pf.correlations, loose,
                     {"read_sigma": read_est, "c2c_sigma": c2c_est}, floor)


def write_fit_json(result: FitResult, path: str | os.PathLike) -> None:
    """Write :meth:`FitResult.to_json_dict` to ``path`` atomically (temporary file, then rename)."""
    atomic_write_text(path, json.dumps(result.to_json_dict(), indent=2) + "\n")
