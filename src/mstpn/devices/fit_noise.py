"""Noise of a device estimated from its own trace, and whether a fit reached that noise floor.

- Read noise (:func:`read_noise`): the pooled relative variance of repeated reads at constant state.
  Those are the tail reads of each bias phase where the fitted decay leaves a change of less than
  half a read-noise sigma (first guess: the per-phase fit residual), so the estimate rests on the
  reads, not on the decay model. Too few such reads (under :data:`MIN_READ_DOF` degrees of freedom):
  the per-phase fit residual is used instead, and the estimate says so.
- Cycle-to-cycle noise (:func:`c2c_noise`): from repeated identical pulses (same polarity, amplitude,
  width). Within a group, the ratio of each observed increment to the fitted model's scatters by
  ``c2c_sigma`` plus the increment's own standard error; a group mean absorbs any error of the model's
  scale for that pulse. A restricted (REML) likelihood over all groups, volatile and long-term
  increments together, gives the estimate and a likelihood-ratio 95 % interval. The trace identifies
  c2c_sigma only if that interval is narrower than ``C2C_RESOLVED + estimate / 2``; otherwise the
  fit keeps the base value and says so.
- Noise floor (:func:`noise_floor`): the fitted model, with the read and c2c noise above, simulated
  :data:`mstpn.devices.fit.FLOOR_COPIES` times over the recorded trace (each copy starting within
  the standard errors of the first phase's fit). The residual those copies leave against the noise-free
  model is what noise alone gives; the fit reached the floor when its own residual is at most
  :data:`FLOOR_FACTOR` times the 90th percentile of theirs, and the reads scatter around the
  per-phase decay fits no more than PHASE_FACTOR times the read noise of constant-state reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MIN_READ_DOF = 20
"""Degrees of freedom (reads beyond one per constant-state run) needed to estimate the read noise."""
CONSTANT_FRACTION = 0.5
"""A read is at constant state when the fitted decay changes G by less than this many read sigmas
between it and the phase's last read."""
C2C_RESOLVED = 0.02
"""c2c_sigma counts as identified when its 95 % interval is narrower than ``C2C_RESOLVED`` plus half
the estimate (on simulated traces, wider intervals went with estimates that model error had
inflated)."""
C2C_GRID = np.concatenate([[0.0], np.geomspace(1e-3, 1.0, 400)])
LR95 = 1.920729
"""Half the 95 % quantile of chi-square with one degree of freedom: the likelihood-ratio interval."""
FLOOR_FACTOR = 1.5
"""A fit reached the noise floor when its residual is at most this times the 90th percentile of the
residuals that noise alone leaves (simulated copies). The accumulated cycle-to-cycle walk makes that
residual heavy-tailed: on the preset's random_pulses traces about 1 in 20 fits of a correct model
lies above 1.25 times the percentile, none above 1.6 (20 simulated devices)."""
PHASE_FACTOR = 1.25
"""The decays are described to the read noise when the scatter around the phase fits is at most this
times the upper end of the 95 % interval of the constant-state read noise."""


@dataclass
class NoiseEstimate:
    """One noise sigma estimated from a trace (relative, dimensionless)."""

    value: float
    """The estimate (NaN when the trace gave none)."""
    interval: tuple[float, float]
    """95 % interval."""
    identified: bool
    """Whether the trace pins it down (else the fit keeps the base value)."""
    source: str
    """What it was estimated from, in words."""
    count: int = 0
    """Degrees of freedom (read noise) or pulses in groups of identical pulses (c2c)."""
    groups: int = 0
    """Runs of constant-state reads, or groups of identical pulses."""

    def to_json(self) -> dict:
        """JSON-able form (NaN and inf as null)."""
        fin = lambda x: float(x) if math.isfinite(x) else None
        return {"value": fin(self.value), "interval_95": [fin(self.interval[0]), fin(self.interval[1])],
                "identified": self.identified, "source": self.source, "count": self.count,
                "groups": self.groups}


def read_noise(phases, model_volatile: list[np.ndarray], sigma_guess: float, guess_dof: int) -> NoiseEstimate:
    """Relative read sigma from repeated reads at constant state.

    ``phases`` are the fitted bias phases (each with reads ``g`` and fitted level ``a``);
    ``model_volatile[i]`` is the fitted volatile part at each read of phase i (same units as g);
    ``sigma_guess`` the per-phase fit residual, with ``guess_dof`` degrees of freedom (the fallback).
    """
    sq, dof, runs = 0.0, 0, 0
    tol = CONSTANT_FRACTION * sigma_guess if math.isfinite(sigma_guess) and sigma_guess > 0 else 0.0
    for p, vol in zip(phases, model_volatile, strict=True):
        if len(p.g) < 2:
            continue
        level = abs(p.a + vol[-1])
        tail = np.abs(vol - vol[-1]) <= tol * level
        # a run at constant state: the last reads of the phase, all within tolerance
        k = len(tail) - int(np.argmin(tail[::-1])) if not tail.all() else 0
        g = p.g[k:]
        if len(g) < 2:
            continue
        rel = g / g.mean() - 1.0
        sq += float(rel @ rel)
        dof += len(g) - 1
        runs += 1
    if dof < MIN_READ_DOF:
        return NoiseEstimate(sigma_guess, _chi_interval(sigma_guess, guess_dof), False,
                             f"per-phase fit residual (only {dof} repeated reads at constant state)",
                             dof, runs)
    sigma = math.sqrt(sq / dof)
    return NoiseEstimate(sigma, _chi_interval(sigma, dof), True, "repeated reads at constant state",
                         dof, runs)


def _chi_interval(sigma: float, dof: int) -> tuple[float, float]:
    if dof <= 0 or not math.isfinite(sigma):
        return (math.nan, math.nan)
    half = 1.959964 / math.sqrt(2.0 * dof)
    return (sigma * max(1.0 - half, 0.0), sigma * (1.0 + half))


def c2c_noise(groups: np.ndarray, obs: list[np.ndarray], se: list[np.ndarray], fit: list[np.ndarray],
              usable: list[np.ndarray]) -> NoiseEstimate:
    """Relative cycle-to-cycle sigma from repeated identical pulses.

    ``groups`` is the group id of every pulse (:func:`mstpn.devices.fit_pulses.pulse_groups`);
    ``obs``, ``se``, ``fit`` and ``usable`` hold, per kind of increment (volatile, long-term), the
    observed increments, their standard errors, the fitted model's increments and which pulses may
    enter (not clipped by the range, model increment clearly nonzero).
    """
    r_all, s_all, gid_all = [], [], []
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    for kind, (o, e, f, ok) in enumerate(zip(obs, se, fit, usable, strict=True)):
        sel = ok & (np.abs(f) > 0) & (e < np.abs(f))
        r_all.append(o[sel] / f[sel])
        s_all.append(e[sel] / np.abs(f[sel]))
        gid_all.append(groups[sel] + kind * n_groups)
    r, s, gid = (np.concatenate(x) for x in (r_all, s_all, gid_all))
    if len(gid):
        _, gid, counts = np.unique(gid, return_inverse=True, return_counts=True)
        keep = counts[gid] >= 2
        r, s, gid = r[keep], s[keep], np.unique(gid[keep], return_inverse=True)[1]
    n_obs = len(r)
    n_grp = int(gid.max()) + 1 if n_obs else 0
    source = "repeated identical pulses"
    if n_obs - n_grp < 4:
        return NoiseEstimate(math.nan, (math.nan, math.nan), False,
                             f"{source}: too few ({n_obs} increments in {n_grp} groups of identical pulses)",
                             n_obs, n_grp)
    ll = np.array([_reml(c, r, s, gid, n_grp) for c in C2C_GRID])
    k = int(np.argmax(ll))
    inside = C2C_GRID[ll >= ll[k] - LR95]
    c_hat, lo, hi = float(C2C_GRID[k]), float(inside.min()), float(inside.max())
    if hi >= C2C_GRID[-1]:
        hi = math.inf
    identified = math.isfinite(hi) and hi - lo <= C2C_RESOLVED + 0.5 * c_hat
    return NoiseEstimate(c_hat, (lo, hi), identified, source, n_obs, n_grp)


def _reml(c: float, r: np.ndarray, s: np.ndarray, gid: np.ndarray, n_grp: int) -> float:
    """Restricted log-likelihood of ratios r (scatter sqrt(c^2 + s^2)) around one mean per group."""
    var = c * c + s * s
    w = 1.0 / var
    sw = np.bincount(gid, weights=w, minlength=n_grp)
    mean = np.bincount(gid, weights=w * r, minlength=n_grp) / sw
    dev = r - mean[gid]
    return float(-0.5 * (np.log(var).sum() + np.log(sw).sum() + (w * dev * dev).sum()))


@dataclass
class NoiseFloor:
    """Whether a fit's residual is what the trace's noise alone would leave."""

    residual_rel_rms: float
    """The fit's residual over all reads (the model run over whole traces)."""
    expected_rel_rms: float
    """Median residual that noise alone leaves (simulated copies of the fitted model with noise)."""
    limit_rel_rms: float
    """FLOOR_FACTOR times the 90th percentile of the simulated residuals."""
    read_sigma: float
    c2c_sigma: float
    reached: bool
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """JSON-able form."""
        return {"reached": self.reached, "residual_rel_rms": self.residual_rel_rms,
                "expected_rel_rms": self.expected_rel_rms, "limit_rel_rms": self.limit_rel_rms,
                "read_sigma": self.read_sigma, "c2c_sigma": self.c2c_sigma, "warnings": list(self.warnings)}


def noise_floor(residual: float, simulated: np.ndarray, read_sigma: float, c2c_sigma: float,
                c2c_identified: bool, phase_sigma: float = math.nan,
                read: NoiseEstimate | None = None) -> NoiseFloor:
    """Compare a fit's ``residual`` with the residuals of ``simulated`` noisy copies (one per copy);
    and, where the read noise came from repeated reads at constant state (``read``), the scatter
    around the per-phase decay fits (``phase_sigma``) with it: decays the model describes leave no
    more than PHASE_FACTOR times the upper end of that read noise's interval."""
    expected = float(np.median(simulated))
    limit = FLOOR_FACTOR * float(np.quantile(simulated, 0.9))
    reached = bool(residual <= limit)
    warnings = []
    if read is not None and read.identified and phase_sigma > PHASE_FACTOR * read.interval[1]:
        reached = False
        warnings.append(f"the decays are not described to the read noise: the reads scatter "
                        f"{100 * phase_sigma:.2f} % around the phase fits, where repeated reads at "
                        f"constant state scatter {100 * read.value:.2f} %; the decay model does not fit "
                        "this trace fully")
    if residual > limit:
        warnings.append(f"the fit did not reach the noise floor: residual {100 * residual:.2f} % RMS, where "
                        f"the estimated noise (read {100 * read_sigma:.2f} %, c2c {100 * c2c_sigma:.1f} %) "
                        f"alone leaves {100 * expected:.2f} % (limit {100 * limit:.2f} %); the model or "
                        "the fit does not describe this trace fully, so treat the parameters with care"
                        + ("" if c2c_identified else "; c2c_sigma is the base value (the traces cannot "
                           "identify it), and a larger cycle-to-cycle noise would also explain part of this"))
    elif not c2c_identified:
        warnings.append("noise floor judged with the base c2c_sigma (the trace cannot identify it)")
    return NoiseFloor(residual, expected, limit, read_sigma, c2c_sigma, reached, warnings)
