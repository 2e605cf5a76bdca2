"""Device basics: pulse simulated SrTiO3 memristors, then watch the volatile part decay at three biases.

    python examples/device_basics.py            # prints the tables below
    python examples/device_basics.py --quick    # fewer time points (what CI runs)

Three devices (one per bias voltage, each with its own device-to-device draw) get the same small
pulse, which adds only volatile conductance; the bias held afterwards sets how fast it is forgotten,
tau(V_b) = tau0 exp(V_b / v_tau). Then a train of large pulses (above v_th) also moves the long-term
conductance, which stays after the volatile part has gone. Every operation returns its energy (J).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from mstpn.devices import DeviceArray, srtio3_weilenmann2024

BIASES_V = (-0.3, 0.1, 0.4)


def volatile_decay(points: int) -> None:
    """One 1 V / 1 ms pulse per device, then hold each at its bias and read what is left (the bias
    doubles as the read voltage)."""
    params = srtio3_weilenmann2024()
    devices = DeviceArray(params, shape=(len(BIASES_V),), seed=0)
    v_b = torch.tensor(BIASES_V, dtype=torch.float64)
    g_before = devices.conductance.clone()
    e_pulse = devices.pulse(v=1.0, t_p=1e-3)
    dg = devices.conductance - g_before
    taus = devices.time_constant(v_b)
    print(f"one 1 V / 1 ms pulse: +{1e9 * float(dg.mean()):.2f} nS volatile, "
          f"{1e12 * float(e_pulse.mean()):.2f} pJ per device")
    print("tau at V_b " + ", ".join(f"{v:+.1f} V: {float(t):.3g} s"
                                    for v, t in zip(BIASES_V, taus, strict=True)))
    print(f"{'t (s)':>8s} " + " ".join(f"{f'left at {v:+.1f} V':>14s}" for v in BIASES_V))
    t_prev = 0.0
    for t in np.geomspace(0.01, 30.0, points):
        devices.hold(v_b, float(t) - t_prev)  # the decay over the time since the last read
        t_prev = float(t)
        current, _ = devices.read(v_b)  # I = G V_r, with read noise
        left = (current / v_b - g_before) / dg  # G = I / V, less the conductance before the pulse
        print(f"{t:8.3g} " + " ".join(f"{100 * float(x):13.1f}%" for x in left))


def long_term_change(pulses: int) -> None:
    """Pulses above v_th also consolidate: the long-term conductance stays after the decay."""
    params = srtio3_weilenmann2024()
    device = DeviceArray(params, seed=1)
    g0 = float(device.conductance)
    for _ in range(pulses):
        device.pulse(v=1.6, t_p=1e-3)
        device.hold(0.0, 0.01)
    g_peak = float(device.conductance)
    device.hold(0.0, 20 * params.tau(0.0))  # 20 time constants: the volatile part is gone
    g_end = float(device.conductance)
    print(f"{pulses} pulses of 1.6 V (v_th = {params.v_th} V): {1e9 * g0:.2f} -> {1e9 * g_peak:.2f} nS, "
          f"after the decay {1e9 * g_end:.2f} nS kept (long-term)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer time points and pulses")
    args = parser.parse_args()
    volatile_decay(points=4 if args.quick else 10)
    long_term_change(pulses=3 if args.quick else 10)


if __name__ == "__main__":
    main()
