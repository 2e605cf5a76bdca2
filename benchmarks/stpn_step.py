"""STPN step at Pong size: the fused cell against the literal autograd transcription, same run.

What is timed: one truncated-BPTT window, i.e. ``--steps`` (20) STPN steps forward from a carried,
detached state, a scalar loss on every step's h, and the backward through the whole window
(I = 2592, H = 64, batch 16 by default). Variants:

- ``fused``: :class:`mstpn.nn.STPNCell` (``fused=True``; at this size ``compile="auto"`` runs it as
  :class:`mstpn.nn.stpn_step.CompiledSTPNStep`, two ``torch.compile``d kernels);
- ``reference``: the same cell with ``fused=False``, i.e. :func:`mstpn.nn.stpn_step.reference_step`
  in a loop, differentiated by autograd.

Timing: both variants in one process, repetitions interleaved (fused, reference, fused, ...) after one
warm-up window each, so background load hits both alike; median and min per window are reported,
the ratio is of medians. Threads: ``--threads`` (default 1, the machine is shared).

Memory, two honest measures:
- ``saved_bytes``: bytes of tensors autograd keeps for backward over the window (unique storages
  seen by ``torch.autograd.graph.saved_tensors_hooks``, parameters excluded), deterministic;
- ``peak_rss_bytes``: high-water resident set size (``VmHWM`` on Linux) of a fresh subprocess that
  sets up the cell and inputs and runs one window, minus that of a subprocess that does the same
  set-up and no window (imports and set-up cancel). Large tensors are mmapped by
  glibc and returned on free, so RSS follows tensor memory closely.

Output: JSON (``--out``, default benchmarks/results/stpn_step.json; the README's 2-thread figures are
``--threads 2 --out benchmarks/results/stpn_step_2threads.json``) with times, ratio, memory, machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from mstpn.atomic import atomic_write_json
from mstpn.nn import STPNCell
from mstpn.rl.common import resolve_device

VARIANTS = ("fused", "reference")
DEFAULT_OUT = Path(__file__).parent / "results" / "stpn_step.json"


def setup(args: argparse.Namespace, seed: int = 0):
    """Cell, inputs (steps, B, I) and a carried, detached state, all seeded, on ``args.device``."""
    torch.manual_seed(seed)
    cell = STPNCell(args.input, args.hidden).to(args.device)
    xs = torch.rand(args.steps, args.batch, args.input).to(args.device)  # post-ReLU features are >= 0
    with torch.no_grad():  # a realistic carried state: a few steps in, F non-zero
        state = None
        for t in range(3):
            _, state = cell(xs[t], state)
    return cell, xs, state


def window(cell: STPNCell, xs: torch.Tensor, state, fused: bool) -> torch.Tensor:
    """One truncated-BPTT window: forward over all steps, backward; returns the loss."""
    cell.fused = fused
    cell.zero_grad(set_to_none=True)
    loss = xs.new_zeros(())
    for x in xs:
        h, state = cell(x, state)
        loss = loss + h.sum()
    loss.backward()
    if loss.is_cuda:
        torch.cuda.synchronize()
    return loss.detach()


def saved_bytes(cell: STPNCell, xs: torch.Tensor, state, fused: bool) -> int:
    """Bytes of distinct non-parameter storages autograd saves for backward over one window."""
    params = {p.untyped_storage().data_ptr() for p in cell.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        cell.fused = fused
        out, st = xs.new_zeros(()), state
        for x in xs:
            h, st = cell(x, st)
            out = out + h.sum()
    del out, st
    return sum(seen.values())


def child(args: argparse.Namespace) -> None:
    """Subprocess body: set up, optionally run one window, print ru_maxrss in bytes."""
    torch.set_num_threads(args.threads)
    cell, xs, state = setup(args)
    if args.child != "setup":
        window(cell, xs, state, fused=args.child == "fused")
    print(high_water_rss())


def high_water_rss() -> int:
    """This process's peak resident set size (bytes).

    Linux: ``VmHWM`` of /proc/self/status, which belongs to the process image; ``ru_maxrss`` is not
    used there because Linux carries it over from the parent across fork + exec. Elsewhere
    ``ru_maxrss`` (bytes on macOS, KiB on other systems).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def peak_rss(args: argparse.Namespace, what: str) -> int:
    cmd = [sys.executable, __file__, "--child", what, "--threads", str(args.threads),
           "--steps", str(args.steps), "--batch", str(args.batch), "--input", str(args.input),
           "--hidden", str(args.hidden)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return int(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=int, default=2592)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--reps", type=int, default=5, help="timed windows per variant")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-memory", action="store_true", help="skip the RSS subprocesses")
    parser.add_argument("--device", default="cpu",
                        help="torch device: cpu (default) or cuda; on cuda the peak GPU memory replaces RSS")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child", choices=("setup", *VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return None
    args.device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    cell, xs, state = setup(args)

    # Same numbers first: gradients of both variants on the same window.
    grads = {}
    for v in VARIANTS:
        window(cell, xs, state, fused=v == "fused")
        grads[v] = [p.grad.clone() for p in cell.parameters()]
    grad_diff = max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
                    for a, b in zip(grads["fused"], grads["reference"], strict=True))
    del grads

    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.reps):
        for v in VARIANTS:
            t0 = time.perf_counter()
            window(cell, xs, state, fused=v == "fused")
            times[v].append(time.perf_counter() - t0)
    median = {v: statistics.median(times[v]) for v in VARIANTS}
    result: dict = {
        "benchmark": "stpn_step", "what": "one BPTT window: forward + backward",
        "sizes": {"input": args.input, "hidden": args.hidden, "batch": args.batch, "steps": args.steps,
                  "synapses": args.hidden * (args.input + args.hidden)},
        "reps": args.reps, "threads": args.threads,
        "time_s": {v: {"median": median[v], "min": min(times[v]), "all": times[v]} for v in VARIANTS},
        "speedup_median": median["reference"] / median["fused"],
        "speedup_min": min(times["reference"]) / min(times["fused"]),
        "max_rel_grad_diff": grad_diff,
        "saved_bytes": {v: saved_bytes(cell, xs, state, v == "fused") for v in VARIANTS},
    }
    if args.device.type == "cuda":
        result["device"] = torch.cuda.get_device_name(args.device)
        result["cuda_peak_allocated_bytes"] = torch.cuda.max_memory_allocated(args.device)
    elif not args.no_memory:
        base = peak_rss(args, "setup")
        peaks = {v: peak_rss(args, v) for v in VARIANTS}
        result["peak_rss_bytes"] = {v: peaks[v] - base for v in VARIANTS}
        result["peak_rss_setup_bytes"] = base
    result["machine"] = {"platform": platform.platform(),
                         "processor": platform.processor() or platform.machine(),
                         "cpu_count": os.cpu_count(), "torch": torch.__version__,
                         "python": platform.python_version(),
                         "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    atomic_write_json(args.out, result)
    mib = 1 / 2**20
    print(f"window ({args.steps} steps, fwd+bwd, {args.threads} thread(s)): fused "
          f"{median['fused']:.3f} s, reference {median['reference']:.3f} s, "
          f"speedup {result['speedup_median']:.2f}x (median of {args.reps}); grads agree to "
          f"{grad_diff:.1e} (relative)")
    print("saved for backward: " + ", ".join(f"{v} {result['saved_bytes'][v] * mib:.0f} MiB"
                                             for v in VARIANTS))
    if "peak_rss_bytes" in result:
        print("peak RSS above set-up: " + ", ".join(
            f"{v} {result['peak_rss_bytes'][v] * mib:.0f} MiB" for v in VARIANTS))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
