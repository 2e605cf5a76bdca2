"""How well a fitted model predicts pulses its trace never had: the fit's out-of-sample check.

A fit can match its own trace and still mispredict other pulses when parameters trade off against
each other (e.g. ``a_st`` and ``v0``). :func:`increment_errors` compares the conductance increments
of two parameter sets on a grid of pulses and starting conductances; :func:`visited_range` gives the
conductances a trace actually visited, the range where such a comparison is fair.
"""

from __future__ import annotations

import numpy as np
import torch

from mstpn.devices import physics
from mstpn.devices.params import SrTiO3Params


def visited_range(result, polarity: float, q: float = 0.1) -> tuple[float, float]:
    """The [q, 1-q] quantiles of the conductance (S) before a fit result's pulses of one polarity."""
    g = result.increments["g_before"][np.sign(result.increments["v"]) == polarity]
    return float(np.quantile(g, q)), float(np.quantile(g, 1 - q))


def increment_errors(true: SrTiO3Params, fitted: SrTiO3Params, g_up: tuple[float, float],
                     g_down: tuple[float, float], amplitudes=(1.0, 1.4, 1.8),
                     widths=(2e-3, 5e-3)) -> tuple[float, float]:
    """Largest relative error of the fitted model's (dg_st, dg_lt) against the true model's.

    Noise-free single pulses of every amplitude (V) and width (s), potentiating from five
    conductances in ``g_up`` (S) and depressing from five in ``g_down``, with no volatile part before;
    dg_lt is compared only where the true one is at least 20 % of its largest (below v_th it is zero).
    """
    rows = [(sign * v, t_p, g) for sign, (lo, hi) in ((1.0, g_up), (-1.0, g_down))
            for v in amplitudes for t_p in widths for g in np.linspace(lo, hi, 5)]
    v, t_p, g = (torch.as_tensor(c) for c in np.array(rows).T)
    out = []
    for p in (true, fitted):
        d = physics.DeviceTensors.sample(p, (), dtype=torch.float64, variability=False)
        state = physics.DeviceState(g, torch.zeros_like(g))
        out.append([x.numpy() for x in physics.pulse_increments(state, v, t_p, d)])
    (lt_true, st_true), (lt_fit, st_fit) = out
    err_st = np.abs(st_fit - st_true) / np.abs(st_true)
    big = np.abs(lt_true) >= 0.2 * np.abs(lt_true).max()
    if not np.abs(lt_true).max() > 0:  # every pulse below v_th: no long-term change to compare
        return float(err_st.max()), 0.0
    err_lt = np.abs(lt_fit - lt_true)[big] / np.abs(lt_true)[big]
    return float(err_st.max()), float(err_lt.max())
