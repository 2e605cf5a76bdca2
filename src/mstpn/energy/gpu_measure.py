"""Measured GPU baseline: NVML's board energy counter around long loops of each synaptic operation.

Needs a CUDA GPU of the Volta generation or newer and ``pynvml`` (package ``nvidia-ml-py``), both
optional: without them :func:`measure_gpu_energy` raises :class:`GPUUnavailable` with the reason, and
the command line prints it as a skip. The analytical model (:mod:`mstpn.energy.gpu`) needs neither.

Method (as the paper: median of 100 runs per synaptic operation):
- ``nvmlDeviceGetTotalEnergyConsumption`` gives the board's energy in mJ since the driver loaded; it
  is refreshed every ~20-100 ms, so each run loops one operation for at least ``run_seconds``.
- Idle power is measured first over ``idle_seconds`` with nothing running.
- Per run: total energy per call = dE / K; idle-subtracted = (dE - P_idle dt) / K; the medians over
  ``runs`` runs are reported, per operation, per step (the three summed) and per game.
- The operations are PyTorch's, as a straightforward implementation would write them:
  transmission ``torch.mv(W + F, z)``, decay ``lambda * F``, update ``F + gamma * outer(h, z)``
  (written to a second buffer, so F keeps its random values: all-zero data would draw less power).
- Modes: "as_written" at the layer's size, "optimal" at ``optimal_synapses`` scaled to the layer.
"""

from __future__ import annotations

import statistics
import time

from mstpn.errors import UserError

SKIP_PREFIX = "measured GPU energy skipped"


class GPUUnavailable(UserError):
    """No CUDA GPU, no NVML (pynvml), or no energy counter on this GPU: the measurement is skipped."""


def _skip(why: str) -> GPUUnavailable:
    return GPUUnavailable(f"{SKIP_PREFIX}: {why}; the analytical model (mstpn energy --paper) needs no GPU")


def open_nvml(device_index: int = 0):
    """Check the prerequisites and return ``(torch, pynvml, handle)`` for the CUDA device.

    Raises :class:`GPUUnavailable` naming what is missing. pynvml is imported lazily, here only.
    """
    import torch

    if not torch.cuda.is_available():
        raise _skip("no CUDA GPU (torch.cuda.is_available() is False)")
    try:
        import pynvml
    except ImportError:
        raise _skip("pynvml is not installed (pip install nvidia-ml-py)") from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise _skip(f"NVML did not initialise ({exc})") from None
    props = torch.cuda.get_device_properties(device_index)
    handle = None
    bus = getattr(props, "pci_bus_id", None)
    if bus is not None:  # match CUDA's device to NVML's by PCI address (CUDA_VISIBLE_DEVICES-safe)
        address = f"{props.pci_domain_id:04x}:{bus:02x}:{props.pci_device_id:02x}.0"
        try:  # bytes: older pynvml passes the argument to ctypes.c_char_p as it is
            handle = pynvml.nvmlDeviceGetHandleByPciBusId(address.encode("ascii"))
        except (pynvml.NVMLError, TypeError):
            handle = None
    if handle is None:
        handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
    try:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError as exc:
        pynvml.nvmlShutdown()
        raise _skip(f"this GPU has no NVML energy counter (Volta or newer needed: {exc})") from None
    return torch, pynvml, handle


def _operations(torch, size: int, hidden: int, dtype, device) -> dict:
    n = max(1, size // hidden)
    gen = torch.Generator(device=device).manual_seed(0)

    def rand(*shape):
        return torch.rand(*shape, generator=gen, device=device, dtype=torch.float32).to(dtype)

    w, f, lam, gam = rand(hidden, n), rand(hidden, n), rand(hidden, n), rand(hidden, n) * 1e-3
    z, h = rand(n), rand(hidden)
    out = torch.empty_like(f)  # results go to a second buffer so F keeps random data (no decay to 0)
    return {
        "transmission": lambda: torch.mv(w + f, z),
        "decay": lambda: torch.mul(f, lam, out=out),
        "update": lambda: torch.add(f, gam * torch.outer(h, z), out=out),
    }


def _median_energy(torch, pynvml, handle, op, runs: int, run_seconds: float, idle_w: float) -> dict:
    op()
    torch.cuda.synchronize()
    k, elapsed = 1, 0.0
    while elapsed < run_seconds / 4:  # find a loop length that runs for about run_seconds
        k *= 2
        start = time.perf_counter()
        for _ in range(k):
            op()
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    k = max(1, int(k * run_seconds / max(elapsed, 1e-9)))
    totals, above_idle, times = [], [], []
    for _ in range(runs):
        torch.cuda.synchronize()
        e0, t0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle), time.perf_counter()
        for _ in range(k):
            op()
        torch.cuda.synchronize()
        e1, t1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle), time.perf_counter()
        joules = (e1 - e0) * 1e-3
        totals.append(joules / k)
        above_idle.append((joules - idle_w * (t1 - t0)) / k)
        times.append((t1 - t0) / k)
    return {"total_j": statistics.median(totals), "above_idle_j": statistics.median(above_idle),
            "time_s": statistics.median(times), "calls_per_run": k}


def measure_gpu_energy(synapses: int = 169_984, hidden: int = 64, steps_per_game: float = 2922.0, *,
                       precisions: tuple[str, ...] = ("fp16", "fp32"), optimal_synapses: int = 2**21,
                       runs: int = 100, run_seconds: float = 1.0, idle_seconds: float = 5.0,
                       device_index: int = 0) -> dict:
    """Measure the three synaptic operations with NVML; per-game mJ, total and idle-subtracted.

    Raises :class:`GPUUnavailable` when there is no CUDA GPU, no pynvml or no energy counter.
    """
    if runs < 1 or run_seconds <= 0 or idle_seconds <= 0:
        raise UserError(f"runs, run_seconds, idle_seconds: must be >= 1, > 0, > 0; got {runs}, "
                        f"{run_seconds}, {idle_seconds}")
    torch, pynvml, handle = open_nvml(device_index)
    try:
        device = torch.device("cuda", device_index)
        torch.cuda.synchronize(device)
        e0, t0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle), time.perf_counter()
        time.sleep(idle_seconds)
        e1, t1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle), time.perf_counter()
        idle_w = (e1 - e0) * 1e-3 / (t1 - t0)
        dtypes = {"fp16": torch.float16, "fp32": torch.float32}
        result: dict = {"gpu": torch.cuda.get_device_name(device), "idle_power_w": idle_w,
                        "runs": runs, "run_seconds": run_seconds, "steps_per_game": steps_per_game,
                        "synapses": synapses, "mj_per_game": {}, "per_op": {}}
        for precision in precisions:
            if precision not in dtypes:
                raise UserError(f"precision: must be one of fp16, fp32, got {precision!r}")
            result["mj_per_game"][precision], result["per_op"][precision] = {}, {}
            for mode, size in (("as_written", synapses), ("optimal", max(synapses, optimal_synapses))):
                ops = _operations(torch, size, hidden, dtypes[precision], device)
                per_op = {name: _median_energy(torch, pynvml, handle, op, runs, run_seconds, idle_w)
                          for name, op in ops.items()}
                scale = synapses / size * steps_per_game * 1e3
                result["per_op"][precision][mode] = per_op
                result["mj_per_game"][precision][mode] = sum(o["total_j"] for o in per_op.values()) * scale
                result["mj_per_game"][precision][f"{mode}_above_idle"] = sum(
                    o["above_idle_j"] for o in per_op.values()) * scale
                del ops
                torch.cuda.empty_cache()
        return result
    finally:
        pynvml.nvmlShutdown()
