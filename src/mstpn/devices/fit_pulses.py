"""Pulse stage of the device fit: ``a_st, v0, beta, a_lt, v_th`` and the range ``g_min, g_max``.

Input (from :mod:`mstpn.devices.fit`): every usable pulse's amplitude and width, the conductance and
volatile part before it, and its observed volatile and long-term increments with standard errors;
and the observed changes across every transition between consecutive bias phases, with and without
a pulse, with their banded measurement covariance (:class:`Transitions`). The cost is the robust
(soft-L1) sum of those changes' residuals, whitened by that covariance plus the cycle-to-cycle noise
of each pulse's increments (generalised least squares). Every prediction goes through
:mod:`mstpn.devices.physics`. The stage runs, deterministically:

1. Starting values from the data alone (:func:`data_start`): v0 and beta on a grid, each with the
   best ``a_st`` in closed form (the volatile increments are linear in it); then v_th on a grid with
   the best ``a_lt``; the range from the conductances the trace visited.
2. A global search (:func:`global_search`): differential evolution (scipy, seeded) over v0, beta,
   v_th and the range, with ``a_st`` and ``a_lt`` solved in closed form at every point; the data
   start is in the first population.
3. Local refinement of all constants by robust least squares on the increments as the device
   applies them (clipped to the range), from the global optimum and from the data start; the lower
   cost wins.
4. 95 % intervals from the Jacobian covariance, scaled by the reduced chi-square; the Jacobian is
   taken afresh at the optimum (one-sided at a bound, so a parameter sitting on a bound keeps an
   interval), and the three strongest correlations.
Optimiser units: conductances relative to ``g_scale`` (the median read); logs of positive constants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import cholesky_banded, solve_banded
from scipy.optimize import differential_evolution, least_squares

from mstpn.devices import physics
from mstpn.devices.params import SrTiO3Params
from mstpn.devices.physics import DeviceState, DeviceTensors

Z95 = 1.959964
"""Two-sided 95 % quantile of the standard normal (intervals are estimate +- Z95 standard errors)."""
LSQ = {"loss": "soft_l1", "f_scale": 3.0, "x_scale": "jac", "xtol": 1e-6, "ftol": 1e-6,
       "max_nfev": 60, "diff_step": 1e-4}
"""least_squares settings: robust to the odd bad increment; a capped budget, since v_th sitting on a
pulse amplitude (a kink of relu) otherwise costs hundreds of iterations."""
DE_OPTIONS = {"popsize": 8, "maxiter": 40, "tol": 1e-7, "mutation": (0.5, 1.0), "recombination": 0.7,
              "polish": False, "init": "sobol"}
"""differential_evolution settings of the global search (at most about 1,600 model evaluations)."""
SEED = 0
"""Seed of the global search: the same trace always gives the same fit."""
C2C_FLOOR = 0.01
"""Smallest relative cycle-to-cycle sigma used in the weights: some allowance for model error."""
V0_GRID = np.geomspace(0.05, 5.0, 24)
BETA_GRID = np.geomspace(0.05, 3.0, 12)


def clusters(values: np.ndarray, tol: np.ndarray | float) -> list[np.ndarray]:
    """Group close values: sorted, a value more than ``tol`` (abs, or per value) above the first of
    its group starts a new one, so a dense spread of values does not chain into a single group."""
    if len(values) == 0:
        return []
    order = np.argsort(values)
    v = values[order]
    tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), values.shape)[order]
    groups, first = [], 0
    for i in range(1, len(v)):  # one pass over the pulses or levels, not over samples
        if v[i] - v[first] > tol[first]:
            groups.append(order[first:i])
            first = i
    groups.append(order[first:])
    return groups


def pulse_groups(v: np.ndarray, t_p: np.ndarray) -> np.ndarray:
    """Group id of every pulse: same polarity, amplitude within 1 % and width within 5 % (identical)."""
    amp_id = np.zeros(len(v), dtype=np.int64)
    for k, g in enumerate(clusters(np.abs(v), np.maximum(0.01, 0.01 * np.abs(v)))):
        amp_id[g] = k
    width_id = np.zeros(len(v), dtype=np.int64)
    for k, g in enumerate(clusters(t_p, 0.05 * t_p)):
        width_id[g] = k
    keys = np.stack([np.sign(v).astype(np.int64), amp_id, width_id], axis=1)
    return np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)


class PulseModel:
    """Pulse increments predicted by :mod:`mstpn.devices.physics` for a parameter vector."""

    LOGS = ("a_st", "a_lt", "v0", "beta")

    def __init__(self, inc: dict[str, np.ndarray], g_scale: float, base: SrTiO3Params,
                 free: list[str], fixed: dict[str, float]) -> None:
        self.g_scale = g_scale
        self.base = base
        self.free = free
        self.fixed = fixed
        gb = torch.as_tensor(inc["g_before"] * g_scale)
        gs = torch.as_tensor(inc["g_st_before"] * g_scale)
        self.state = DeviceState(gb - gs, gs)
        self.v = torch.as_tensor(inc["v"])
        self.t_p = torch.as_tensor(inc["t_p"])

    def values(self, u: np.ndarray) -> dict[str, float]:
        """Physical parameter values (SI) from the optimiser vector (logs for positive quantities)."""
        vals = dict(self.fixed)
        for name, x in zip(self.free, u, strict=True):
            if name in ("a_st", "a_lt"):
                vals[name] = math.exp(x) * self.g_scale
            elif name in ("v0", "beta"):
                vals[name] = math.exp(x)
            elif name in ("g_min", "g_max"):
                vals[name] = x * self.g_scale
            else:
                vals[name] = float(x)
        return {k: float(v) for k, v in vals.items()}

    def vector(self, vals: dict[str, float]) -> np.ndarray:
        """Inverse of :meth:`values` (vals in SI)."""
        out = []
        for name in self.free:
            x = vals[name]
            if name in ("a_st", "a_lt"):
                out.append(math.log(x / self.g_scale))
            elif name in ("v0", "beta"):
                out.append(math.log(x))
            elif name in ("g_min", "g_max"):
                out.append(x / self.g_scale)
            else:
                out.append(x)
        return np.array(out)

    def _devices(self, vals: dict[str, float], unit: bool = False) -> DeviceTensors:
        p = self.base.replace(**{k: v for k, v in vals.items() if k not in ("a_st", "a_lt")})
        a = (self.g_scale, self.g_scale) if unit else (vals["a_st"], vals["a_lt"])
        return DeviceTensors(*(torch.tensor(float(x), dtype=torch.float64)
                               for x in (vals["g_min"], vals["g_max"], *a)),
                             tau0=torch.tensor(p.tau0, dtype=torch.float64), params=p)

    def predict(self, vals: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(dg_lt, dg_st) of every pulse in units of g_scale: one noise-free physics.apply_pulse each,
        so increments that the range clips are predicted clipped, as the device shows them."""
        new, _ = physics.apply_pulse(self.state, self.v, self.t_p, self._devices(vals))
        dl, ds = new.g_lt - self.state.g_lt, new.g_st - self.state.g_st
        return dl.numpy() / self.g_scale, ds.numpy() / self.g_scale

    def unit(self, vals: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(dg_lt, dg_st) per unit a_lt and a_st (both = g_scale), before clipping: the increments are
        linear in a_lt and a_st there (physics.pulse_increments)."""
        dl, ds = physics.pulse_increments(self.state, self.v, self.t_p, self._devices(vals, unit=True))
        return dl.numpy() / self.g_scale, ds.numpy() / self.g_scale


@dataclass
class PulseFit:
    """Result of the pulse stage (conductances in SI)."""

    values: dict[str, float]
    """Fitted a_st, v0, beta, a_lt, v_th, g_min, g_max (SI)."""
    free: list[str]
    intervals: dict[str, tuple[float, float]]
    """95 % interval of every free constant (SI)."""
    correlations: list[tuple[str, str, float]]
    dg_lt: np.ndarray
    """Predicted long-term increment of every pulse (units of g_scale)."""
    dg_st: np.ndarray
    """Predicted volatile increment of every pulse (units of g_scale)."""
    chi_rms: float
    """RMS of the increments' residuals in units of their expected scatter (about 1 at the noise floor)."""
    start: str
    """Which start the local refinement kept: 'global' or 'data'."""
    bounds: tuple[np.ndarray, np.ndarray] | None = None
    """Lower and upper bounds of the free constants (optimiser units)."""


@dataclass
class Transitions:
    """Every transition between consecutive fitted bias phases, across one pulse or none.

    Observed: the change of the volatile part and of the long-term level across each transition,
    interleaved (volatile, long-term) in time order; a transition without a pulse predicts no change.
    Consecutive transitions share a phase, so their observations are correlated: ``band`` holds
    their measurement covariance in the lower banded form of :func:`scipy.linalg.cholesky_banded`.
    Weighting by the full covariance (generalised least squares) keeps what the sum of many small
    long-term steps says, which per-pulse independent errors would throw away.
    """

    pulse: np.ndarray
    """Index of each transition's pulse among the increments, -1 for a transition without one."""
    obs: np.ndarray
    """Observed changes, interleaved (volatile, long-term), units of g_scale."""
    band: np.ndarray
    """(4, 2 n) lower banded measurement covariance of ``obs``."""


class _Problem:
    """Observed changes, their whitening (measurement covariance plus c2c noise) and the robust cost."""

    def __init__(self, model: PulseModel, inc: dict[str, np.ndarray], links: Transitions, c2c: float) -> None:
        self.model = model
        self.links = links
        self.at = np.flatnonzero(links.pulse >= 0)
        self.k = links.pulse[self.at]
        self.obs = links.obs
        self.c2c = max(c2c, C2C_FLOOR)
        self.rescale(inc["dg_lt_obs"], inc["dg_st_obs"])

    def full(self, dl: np.ndarray, ds: np.ndarray) -> np.ndarray:
        """Per-pulse (dl, ds) placed at their transitions (interleaved; zero where no pulse)."""
        out = np.zeros_like(self.obs)
        out[2 * self.at], out[2 * self.at + 1] = ds[self.k], dl[self.k]
        return out

    def rescale(self, dl: np.ndarray, ds: np.ndarray) -> None:
        """Whitening for measurement covariance plus c2c noise of the increments ``dl`` / ``ds``."""
        band = self.links.band.copy()
        band[0] += (self.c2c * self.full(dl, ds)) ** 2 + 1e-18
        try:
            self.chol = cholesky_banded(band, lower=True)
        except np.linalg.LinAlgError:  # not positive definite (should not happen): independent errors
            self.chol = np.sqrt(band[:1])

    def whiten(self, r: np.ndarray) -> np.ndarray:
        """L^-1 r for the Cholesky factor L of the covariance."""
        width = self.chol.shape[0] - 1
        return solve_banded((width, 0), self.chol, r)

    def residuals(self, u: np.ndarray) -> np.ndarray:
        dl, ds = self.model.predict(self.model.values(u))
        return self.whiten(self.full(dl, ds) - self.obs)

    @staticmethod
    def robust(z: np.ndarray) -> float:
        """Sum of the soft-L1 loss of least_squares (``f_scale`` of :data:`LSQ`) over residuals z."""
        f = LSQ["f_scale"]
        return float(np.sum(2.0 * f * f * (np.sqrt(1.0 + (z / f) ** 2) - 1.0)))

    def linear_a(self, vals: dict[str, float]) -> tuple[float, float, float]:
        """Best a_st and a_lt (units of g_scale) for the other constants in ``vals`` (closed-form
        generalised least squares on the unclipped increments, both >= 1e-9) and the robust cost."""
        ul, us = self.model.unit(vals)
        zero = np.zeros_like(ul)
        cols = np.stack([self.whiten(self.full(zero, us)), self.whiten(self.full(ul, zero))], axis=1)
        y = self.whiten(self.obs)
        gram, rhs = cols.T @ cols, cols.T @ y
        a = np.full(2, 1e-9)
        if np.linalg.det(gram) > 1e-12 * max(gram[0, 0] * gram[1, 1], 1e-300):
            a = np.linalg.solve(gram, rhs)
        if not (a > 1e-9).all():  # a bound is active: best of the other alone
            a = np.full(2, 1e-9)
            for i in (0, 1):
                if gram[i, i] > 0:
                    a[i] = max((rhs[i] - gram[i, 1 - i] * 1e-9) / gram[i, i], 1e-9)
        return float(a[0]), float(a[1]), self.robust(cols @ a - y)


def _bounds(free: list[str], g_lo: float, g_hi: float, vmax: float) -> tuple[np.ndarray, np.ndarray]:
    table = {"a_st": (-30.0, 10.0), "a_lt": (-30.0, 10.0), "v0": (math.log(0.02), math.log(20.0)),
             "beta": (math.log(0.02), math.log(5.0)), "v_th": (0.0, vmax),
             "g_min": (0.0, g_lo), "g_max": (g_hi * (1 + 1e-6), 1e3 * g_hi)}
    return np.array([table[n][0] for n in free]), np.array([table[n][1] for n in free])


def data_start(problem: _Problem, free: list[str], fixed: dict[str, float], g_lo: float, g_hi: float,
               vmax: float) -> dict[str, float]:
    """Starting values from the data alone (SI): the range from the conductances visited, v0 x beta
    on a grid and v_th on a grid, each with the best a_st / a_lt in closed form."""
    m = problem.model
    gs = m.g_scale
    vals = {"g_min": fixed.get("g_min", 0.5 * g_lo * gs), "g_max": fixed.get("g_max", (2 * g_hi - g_lo) * gs),
            "v_th": vmax, "v0": 0.5, "beta": 0.5}
    best = None
    for v0 in V0_GRID:
        for beta in BETA_GRID:
            a_st, _, cost = problem.linear_a({**vals, "v0": float(v0), "beta": float(beta)})
            if best is None or cost < best[0]:
                best = (cost, float(v0), float(beta), a_st)
    _, vals["v0"], vals["beta"], a_st = best
    trials = []
    for v_th in np.linspace(0.0, vmax, 41)[:-1]:
        a_st_k, a_lt, cost = problem.linear_a({**vals, "v_th": float(v_th)})
        trials.append((cost, float(v_th), a_st_k, a_lt))
    _, vals["v_th"], a_st, a_lt = min(trials)
    vals.update(a_st=a_st * gs, a_lt=a_lt * gs)
    return vals


def global_search(problem: _Problem, free: list[str], fixed: dict[str, float], start: dict[str, float],
                  g_lo: float, g_hi: float, vmax: float, seed: int = SEED) -> dict[str, float]:
    """Differential evolution over v0, beta, v_th and the free range ends, a_st and a_lt in closed
    form; ``start`` (SI) seeds the first population. Returns the best point (SI)."""
    gs = problem.model.g_scale
    names = ["v0", "beta", "v_th"] + [n for n in ("g_min", "g_max") if n in free]

    def point(z: np.ndarray) -> dict[str, float]:
        vals = dict(fixed)
        vals.update(v0=math.exp(z[0]), beta=math.exp(z[1]), v_th=float(z[2]))
        k = 3
        if "g_min" in names:
            vals["g_min"] = float(z[k]) * g_lo * gs
            k += 1
        if "g_max" in names:
            vals["g_max"] = g_hi * gs * (1.0 + math.exp(z[k]))
        return vals

    lo = [math.log(0.02), math.log(0.02), 0.0]
    hi = [math.log(20.0), math.log(5.0), vmax]
    z0 = [math.log(start["v0"]), math.log(start["beta"]), start["v_th"]]
    if "g_min" in names:
        lo.append(0.0)
        hi.append(1.0 - 1e-6)
        z0.append(start["g_min"] / (g_lo * gs))
    if "g_max" in names:
        lo.append(math.log(1e-4))
        hi.append(math.log(999.0))
        z0.append(math.log(max(start["g_max"] / (g_hi * gs) - 1.0, 1e-4)))
    z0 = np.clip(z0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)

    def cost(z: np.ndarray) -> float:
        return problem.linear_a(point(z))[2]

    res = differential_evolution(cost, list(zip(lo, hi, strict=True)), x0=z0, seed=seed, **DE_OPTIONS)
    vals = point(res.x)
    a_st, a_lt, _ = problem.linear_a(vals)
    vals.update(a_st=a_st * gs, a_lt=a_lt * gs)
    return vals


def _refine(problem: _Problem, start: dict[str, float], lower: np.ndarray, upper: np.ndarray):
    """Two passes of robust least squares from ``start`` (SI), the c2c part of the weights from the
    predictions at the start, then at the first pass's optimum."""
    m = problem.model
    u0 = np.clip(m.vector(start), lower + 1e-9, upper - 1e-9)
    problem.rescale(*m.predict(m.values(u0)))
    best = least_squares(problem.residuals, u0, bounds=(lower, upper), **LSQ)
    problem.rescale(*m.predict(m.values(best.x)))
    best = least_squares(problem.residuals, best.x, bounds=(lower, upper), **LSQ)
    return best, problem.robust(best.fun)


def _jacobian(problem: _Problem, u: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Finite-difference Jacobian of the residuals at ``u``: central inside the bounds, one-sided at
    one (least_squares reports zero columns for parameters on an active bound)."""
    f0 = problem.residuals(u)
    cols = []
    for i in range(len(u)):
        h = 1e-4 * max(1.0, abs(u[i]))
        up, down = u.copy(), u.copy()
        up[i] = min(u[i] + h, upper[i])
        down[i] = max(u[i] - h, lower[i])
        if up[i] - down[i] <= 0:
            cols.append(np.zeros_like(f0))
            continue
        f_up = problem.residuals(up) if up[i] > u[i] else f0
        f_down = problem.residuals(down) if down[i] < u[i] else f0
        cols.append((f_up - f_down) / (up[i] - down[i]))
    return np.stack(cols, axis=1)


def pulse_uncertainty(problem: _Problem, u: np.ndarray, lower: np.ndarray, upper: np.ndarray
                      ) -> tuple[dict[str, tuple[float, float]], list[tuple[str, str, float]]]:
    """95 % intervals of the free constants from the Jacobian covariance at ``u`` (scaled by the
    reduced chi-square), mapped through each parameter's transform and clipped to its bounds; and
    the three strongest correlations. A parameter the residuals do not depend on gets its bounds."""
    m = problem.model
    free = m.free
    fun = problem.residuals(u)
    jac = _jacobian(problem, u, lower, upper)
    dof = max(len(fun) - len(free), 1)
    norms = np.linalg.norm(jac, axis=0)
    live = norms > 1e-10 * max(float(norms.max()), 1e-300)
    cov = np.full((len(free), len(free)), np.nan)
    if live.any():
        jl = jac[:, live]
        cov[np.ix_(live, live)] = float(fun @ fun) / dof * np.linalg.pinv(jl.T @ jl)
    diag = np.diag(cov)
    se = np.where(np.isfinite(diag) & (diag > 0), np.sqrt(np.abs(diag)), np.inf)
    intervals = {}
    for i, name in enumerate(free):
        ends = []
        for sign in (-1.0, 1.0):
            x = u.copy()
            x[i] = np.clip(u[i] + sign * Z95 * se[i], lower[i], upper[i]) if math.isfinite(se[i]) else (
                lower[i] if sign < 0 else upper[i])
            ends.append(m.values(x)[name])
        intervals[name] = (min(ends), max(ends))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(se, se)
    pairs = [(free[i], free[j], float(corr[i, j])) for i in range(len(free)) for j in range(i + 1, len(free))
             if math.isfinite(corr[i, j])]
    return intervals, sorted(pairs, key=lambda t: -abs(t[2]))[:3]


def widen_intervals(pf: PulseFit, model: PulseModel, extra_var: np.ndarray) -> dict[str, tuple[float, float]]:
    """``pf``'s intervals with an extra variance per free constant (optimiser units, e.g. from the
    uncertainty of tau0 and v_tau the pulse stage is conditioned on) added in quadrature."""
    u = model.vector(pf.values)
    out = {}
    for i, name in enumerate(model.free):
        lo, hi = pf.intervals[name]
        ends = []
        for end, sign in ((lo, -1.0), (hi, 1.0)):
            x = u.copy()
            linear = name in ("v_th", "g_min", "g_max")
            x[i] = model.vector({**pf.values, name: end})[i] if end > 0 or linear else -math.inf
            if math.isfinite(x[i]):
                x[i] = u[i] + sign * math.hypot(x[i] - u[i], Z95 * math.sqrt(max(extra_var[i], 0.0)))
                if pf.bounds is not None:
                    x[i] = float(np.clip(x[i], pf.bounds[0][i], pf.bounds[1][i]))
                ends.append(model.values(x)[name])
            else:
                ends.append(end)
        out[name] = (min(ends), max(ends))
    return out


def fit_pulses(inc: dict[str, np.ndarray], links: Transitions, g_scale: float, base: SrTiO3Params,
               g_lo: float, g_hi: float, free: Sequence[str], fixed: dict[str, float], c2c: float, *,
               start: dict[str, float] | None = None, seed: int = SEED) -> PulseFit:
    """Fit the pulse constants to the observed changes (the module docstring gives the method).

    ``free`` names the constants to fit (a_st, v0, beta, a_lt, v_th and any of g_min, g_max),
    ``fixed`` gives the others (SI); ``g_lo``, ``g_hi`` are the lowest and highest conductance the
    trace visited (units of g_scale); ``c2c`` the relative cycle-to-cycle sigma for the weights. With
    ``start`` (SI) the data start and the global search are skipped: only the local refinement runs.
    """
    free = list(free)
    model = PulseModel(inc, g_scale, base, free, fixed)
    problem = _Problem(model, inc, links, c2c)
    vmax = float(np.abs(inc["v"]).max())
    lower, upper = _bounds(free, g_lo, g_hi, vmax)
    if start is None:
        starts = {"data": data_start(problem, free, fixed, g_lo, g_hi, vmax)}
        starts["global"] = global_search(problem, free, fixed, starts["data"], g_lo, g_hi, vmax, seed)
    else:
        starts = {"given": start}
    runs = {name: _refine(problem, s, lower, upper) for name, s in starts.items()}
    kept = min(runs, key=lambda name: runs[name][1])
    best = runs[kept][0]
    dl, ds = model.predict(model.values(best.x))
    problem.rescale(dl, ds)
    intervals, correlations = pulse_uncertainty(problem, best.x, lower, upper)
    z = problem.residuals(best.x)
    vals = model.values(best.x)
    return PulseFit({n: vals[n] for n in (*free, *fixed)}, free, intervals, correlations, dl, ds,
                    float(np.sqrt(np.mean(z**2))), kept, (lower, upper))
