"""Benchmark: one device step (pulse + bias hold + read) against a plain multiply-add, same run.

The step is :func:`mstpn.devices.step.device_step` under ``torch.compile`` on 16 x 169,984 float32
device states (a batch of 16 through the Pong network's 169,984 STPN synapses), laid out as
:class:`~mstpn.nn.mstpn.MSTPNCell` lays them out: every synapse has its own device-to-device
parameters and its own (learned) decay bias, shared by the batch; every device state gets its own
pulse amplitude and polarity; cycle-to-cycle and read noise are drawn from a pooled
:class:`~mstpn.devices.noise.NoiseSource` (the draws are timed as part of the step). The
reference is ``a * b + c`` on three float32 tensors of the same shape.

Two variants bracket it: all devices with one pulse amplitude and one bias (0.6 V, the paper's
worst case for the decay bias), which saves two of the three exponentials per device; and
16 x 169,984 fully independent devices (16 chips, d2d parameters and bias per device state), which
streams five more full-size tensors. All are timed interleaved in one process; the medians are
reported. Target: the network-layout device step within 6x of the multiply-add.

glibc returns freed blocks of this size (11 MB) to the kernel by default, so every new tensor costs
page faults that dwarf the arithmetic (a*b+c: ~16 ms instead of ~1.5 ms on the development machine).
Unless ``--no-malloc-tuning`` is given, the benchmark first asks glibc (``mallopt``) to keep them,
as a long-running training process effectively does; the JSON records which mode was used.

    python benchmarks/device_step.py [--out benchmarks/results/device_step.json] [--repeats 40]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT / "results" / "device_step.json"
TARGET_RATIO = 6.0


def tune_malloc() -> str:
    """Keep large freed blocks in the heap (glibc); returns a description of what was done."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = (libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024) == 1
              and libc.mallopt(m_trim_threshold, 4 * 1024 * 1024 * 1024 - 1) == 1)
    except (OSError, AttributeError):
        ok = False
    return ("glibc mallopt: M_MMAP_THRESHOLD=32 MiB, M_TRIM_THRESHOLD=4 GiB" if ok
            else "default allocator (mallopt unavailable)")


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo, or what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def median_ms(times: list[float]) -> float:
    return 1e3 * statistics.median(times)


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timed_both(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall-clock, process CPU) seconds of one call; CPU time is immune to other processes' load."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"result JSON (default {DEFAULT_OUT})")
    parser.add_argument("--rows", type=int, default=16, help="batch size (16)")
    parser.add_argument("--cols", type=int, default=169_984, help="devices per batch element (169984)")
    parser.add_argument("--repeats", type=int, default=40, help="timed repeats of each (40)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--no-compile", action="store_true", help="time the eager step only")
    parser.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's default behaviour")
    parser.add_argument("--note", default="", help="free text stored in the JSON (e.g. how it was run)")
    args = parser.parse_args(argv)

    malloc = "default allocator" if args.no_malloc_tuning else tune_malloc()
    import torch

    from mstpn.devices import NoiseSource, srtio3_weilenmann2024
    from mstpn.devices.physics import DeviceTensors, initial_state
    from mstpn.devices.step import compiled_device_step, device_step

    if args.threads:
        torch.set_num_threads(args.threads)
    shape = (args.rows, args.cols)
    params = srtio3_weilenmann2024()
    gen = torch.Generator().manual_seed(0)
    # The network layout: d2d parameters and the decay bias per synapse, shared by the batch (as in
    # MSTPNCell); every device state its own pulse (0.6-2 V, either polarity).
    synapses = DeviceTensors.sample(params, shape[1:], seed=0, dtype=torch.float32)
    v_dev = (0.6 + 1.4 * torch.rand(shape, generator=gen)) * torch.where(
        torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0)
    v_b_syn = -0.6 + 1.2 * torch.rand(shape[1:], generator=gen)
    # 16 x 169,984 fully independent devices (16 chips): d2d and bias per device state as well
    chips = DeviceTensors.sample(params, shape, seed=0, dtype=torch.float32)
    v_b_dev = -0.6 + 1.2 * torch.rand(shape, generator=gen)
    configs = {"per_device": (v_dev, v_b_syn, synapses),
               "independent": (v_dev, v_b_dev, chips),
               "shared": (1.5, 0.6, synapses)}  # one write amplitude, the paper's worst-case 0.6 V bias
    g0 = torch.rand(shape, generator=gen)
    states = {name: initial_state(d, d.g_min + g0 * d.span) for name, (_, _, d) in configs.items()}
    t_p, dt, v_r, t_read = 1e-3, 4 / 60, 0.1, 1e-6
    noise = NoiseSource(1)

    def draw() -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        return (noise.normal(shape), noise.normal(shape)), noise.normal(shape)

    a, b, c = (torch.randn(shape, generator=gen) for _ in range(3))
    c2c, read_eps = draw()

    def call(step: Callable[..., object], name: str, c2c: object, read_eps: object) -> object:
        v, v_b, devices = configs[name]
        return step(states[name], v, t_p, v_b, dt, v_r, t_read, devices, c2c, read_eps)

    eager = call(device_step, "per_device", c2c, read_eps)
    eager_ms = median_ms([timed(lambda: call(device_step, "per_device", c2c, read_eps)) for _ in range(3)])
    step = device_step
    compile_s, agreement = 0.0, None
    if not args.no_compile:
        step = compiled_device_step()
        compile_s = sum(timed(lambda name=name: call(step, name, c2c, read_eps)) for name in configs)
        out = call(step, "per_device", c2c, read_eps)
        pairs = {"g_lt": (out.state.g_lt, eager.state.g_lt), "g_st": (out.state.g_st, eager.state.g_st),
                 "current": (out.current, eager.current), "energy": (out.energy, eager.energy)}
        agreement = {k: float((x - y).abs().max() / y.abs().max().clamp_min(1e-30))
                     for k, (x, y) in pairs.items()}

    def full_step(name: str) -> Callable[[], object]:
        return lambda: call(step, name, *draw())  # noise draws are part of the step

    def kernel(name: str) -> Callable[[], object]:
        return lambda: call(step, name, c2c, read_eps)

    timers = {"multiply_add": lambda: a * b + c, "noise_draw": draw}
    for name in configs:
        timers[f"{name}_step"] = full_step(name)
        timers[f"{name}_kernel"] = kernel(name)
    for _ in range(3):  # warm up caches and thread pools
        for fn in timers.values():
            fn()
    load_before = os.getloadavg()[0]
    walls: dict[str, list[float]] = {name: [] for name in timers}
    cpus: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(args.repeats):  # interleaved, so slow phases of a shared machine hit all alike
        for name, fn in timers.items():
            wall, cpu = timed_both(fn)
            walls[name].append(wall)
            cpus[name].append(cpu)
    ms = {name: median_ms(t) for name, t in walls.items()}
    cpu_ms = {name: median_ms(t) for name, t in cpus.items()}
    mad_ms, step_ms = ms["multiply_add"], ms["per_device_step"]
    result = {
        "benchmark": "one device step (pulse + hold + read, with c2c and read noise) vs a * b + c",
        "shape": list(shape), "devices": args.rows * args.cols, "dtype": "float32",
        "multiply_add_ms": mad_ms,
        "device_step_ms": step_ms,
        "ratio": step_ms / mad_ms,
        "target_ratio": TARGET_RATIO,
        "meets_target": step_ms / mad_ms <= TARGET_RATIO,
        "shared_voltage_step_ms": ms["shared_step"],
        "shared_voltage_ratio": ms["shared_step"] / mad_ms,
        "independent_devices_step_ms": ms["independent_step"],
        "independent_devices_ratio": ms["independent_step"] / mad_ms,
        "device_step_without_noise_draw_ms": ms["per_device_kernel"],
        "shared_voltage_step_without_noise_draw_ms": ms["shared_kernel"],
        "noise_draw_ms": ms["noise_draw"],
        "eager_device_step_ms": eager_ms,
        "cpu_time": {"note": "median process CPU time per call (all threads; immune to other processes "
                             "on a busy machine, but counts OpenMP spin-waiting when threads > 1)",
                     **{f"{name}_ms": value for name, value in cpu_ms.items()},
                     "ratio": cpu_ms["per_device_step"] / cpu_ms["multiply_add"],
                     "shared_voltage_ratio": cpu_ms["shared_step"] / cpu_ms["multiply_add"],
                     "independent_devices_ratio": cpu_ms["independent_step"] / cpu_ms["multiply_add"]},
        "compiled": not args.no_compile,
        "compile_s": compile_s,
        "compiled_vs_eager_max_rel_diff": agreement,
        "step_settings": {"t_p_s": t_p, "dt_s": dt, "v_r_V": v_r, "t_read_s": t_read,
                          "device_step": "every device state its own pulse amplitude (|V| 0.6-2 V, "
                                         "random polarity); every synapse its own bias (-0.6..0.6 V)",
                          "shared_voltage_step": "one pulse amplitude (1.5 V) and one bias (0.6 V) for all",
                          "independent_devices_step": "16 x 169,984 independent devices (16 chips): d2d "
                                                      "parameters and bias per device state too",
                          "variability": "per-synapse d2d parameters (g_min, g_max, a_st, a_lt, tau0), "
                                         "shared by the batch as in MSTPNCell",
                          "noise": "c2c and read noise from a pooled NoiseSource, drawn inside the timing"},
        "repeats": args.repeats,
        "note": args.note,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "python": platform.python_version(),
                    "platform": platform.platform(), "allocator": malloc,
                    "load_average_1min": load_before, "nice": os.nice(0)},
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, out_path)
    print(f"device step {step_ms:.2f} ms (per-device voltages; noise draw {ms['noise_draw']:.2f} ms of it), "
          f"a*b+c {mad_ms:.2f} ms: ratio {result['ratio']:.2f} (target <= {TARGET_RATIO:g}); shared "
          f"voltages {ms['shared_step']:.2f} ms (ratio {result['shared_voltage_ratio']:.2f}); 16 independent "
          f"chips {ms['independent_step']:.2f} ms (ratio {result['independent_devices_ratio']:.2f}); eager "
          f"{eager_ms:.0f} ms; CPU-time ratios {result['cpu_time']['ratio']:.2f} / "
          f"{result['cpu_time']['shared_voltage_ratio']:.2f}; load {load_before:.1f}; wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
