"""Hand-made synthetic traces for the trace and fit tests, simulated with :class:`DeviceArray`.

They follow the trace convention of :mod:`mstpn.devices.trace` (a pulse is two samples at its start
and end; reads at the bias level) and are independent of the protocols module.
"""

from __future__ import annotations

import math

import numpy as np

from mstpn.devices import DeviceArray, SrTiO3Params
from mstpn.devices.trace import Trace


def pulse_read_trace(params: SrTiO3Params, *, seed: int = 0, amplitudes=(0.8, 1.2, 1.6, 2.0),
                     widths=(1e-3, 1e-2), biases=(-0.3, 0.1, 0.4), repeats: int = 2,
                     reads: int = 12, span_tau: float = 6.0, noise: bool = True,
                     g_init: float | None = None, signs=(1.0, -1.0, -1.0)) -> Trace:
    """Pulses of every amplitude and width, each followed by a decay, in blocks of polarity ``signs``.

    By default a potentiating block, then two depressing ones (to come back down). The bias after
    each pulse cycles through ``biases``; reads are log-spaced from 0.01 tau to ``span_tau`` tau
    after the pulse (dense early, sparse late).
    """
    dev = DeviceArray(params, (), seed=seed, noise=noise, g_init=g_init)
    rows: list[tuple[float, float, float]] = []
    t = 0.0

    def read_at(v_b: float, when: float) -> None:
        nonlocal t
        dev.hold(v_b, when - t)
        t = when
        current, _ = dev.read(v_b)
        rows.append((t, v_b, float(current)))

    v_b = biases[0]
    for k in range(4):
        read_at(v_b, t + 0.05 * (k + 1) * params.tau(v_b))
    n = 0
    for _ in range(repeats):
        for sign in signs:
            for amp in amplitudes:
                for width in widths:
                    v = sign * amp
                    dev.hold(v_b, 1e-4)
                    t += 1e-4
                    rows.append((t, v, float(dev.conductance) * v))
                    dev.pulse(v, width)
                    t += width
                    rows.append((t, v, float(dev.conductance) * v))
                    v_b = biases[n % len(biases)]
                    n += 1
                    tau = params.tau(v_b)
                    t_end = t
                    for off in np.logspace(math.log10(0.01 * tau), math.log10(span_tau * tau), reads):
                        read_at(v_b, t_end + float(off))
    arr = np.array(rows)
    return Trace(arr[:, 0], arr[:, 1], arr[:, 2], source="synthetic")
