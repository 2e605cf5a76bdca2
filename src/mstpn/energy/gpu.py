"""Analytical GPU baseline: the same synaptic operations of the same layer, on a GPU.

Three synaptic operations per network step, on S = H * N synapses (PAPER.md), each one kernel:

    transmission  y = (W + F) z        reads W, F, z; writes y         3 S FLOP
    decay         F = lambda * F       reads lambda, F; writes F        1 S FLOP
    update        F = F + gamma h z^T  reads gamma, F, h, z; writes F   3 S FLOP

Time of one operation, a roofline with latency::

    t_op = max(t_host, t_launch + max(bytes / (eta * BW), FLOP / peak))

``t_host`` is the host-side time an eager framework takes to issue one operation: a kernel that runs
shorter than that leaves the GPU waiting (the "as written" regime of one game with batch 1).
``t_launch`` is the device-side gap between back-to-back kernels. ``eta * BW`` is the achieved memory
bandwidth. Energy, as a board power meter would see it::

    E_board = P_board * sum_op t_op

and, separately, the pure dynamic energy of the work itself (a lower bound, no idle or static power)::

    E_dyn = bytes * e_DRAM + FLOP * e_FLOP

Modes (the paper's): ``as_written`` runs one game's layer, S synapses, batch 1; ``optimal`` runs the
operations at the GPU's efficient size (several games batched: the paper's ~2^21 synapses on the A100,
:func:`efficient_synapses` for the others) and scales the energy linearly down to S.

Known limit: the board power is the TDP whether the GPU computes or waits for the host, so in the
host-bound "as written" mode a 700 W H100/H200 comes out *above* the 400 W A100; read those two
numbers as the model's upper bound, not as a measurement.

Calibration: two constants, ``t_host`` and ``eta``, are *calibrated* (:func:`calibrate`) on the
paper's two A100 fp16 figures (34,780.5 mJ as written, 3,463.9 mJ optimal per game), because neither
is a datasheet number: ``t_host`` depends on the software stack the paper used, ``eta`` on its kernels.
Everything else is a cited spec (:class:`GPUSpec`). The fp32 figures are then *predicted*, not fitted
(:mod:`mstpn.energy.paper`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from mstpn.energy.validate import EnergyConfigError, check_fields

PRECISIONS = {"fp16": 2, "fp32": 4}
"""Bytes per element of each precision."""
MODES = ("optimal", "as_written")


@dataclass(frozen=True)
class GPUSpec:
    """One GPU's datasheet numbers and per-operation energies. Every field is overridable."""

    name: str
    """Display name."""
    memory_bandwidth_bps: float
    """Peak DRAM bandwidth (B/s), from the vendor datasheet named in the preset."""
    peak_flops_fp16: float
    """Peak non-tensor-core fp16 arithmetic (FLOP/s): element-wise ops and matrix-vector products do
    not use the tensor cores. Vendor whitepaper/datasheet."""
    peak_flops_fp32: float
    """Peak fp32 arithmetic (FLOP/s). Vendor datasheet."""
    board_power_w: float
    """Board power while the operations run (W): the TDP of the preset's form factor, an upper bound
    (the paper's measurement method for power is not stated)."""
    launch_latency_s: float = 1.0e-6
    """Device-side gap between back-to-back kernels of one stream (s). Not calibrated. Source:
    A. Gray, "Getting Started with CUDA Graphs", NVIDIA Technical Blog (2019): a short kernel issued
    back to back costs ~3.8 us against its 2.9 us run time (V100), i.e. ~1 us of launch gap."""
    dram_j_per_byte: float = 31.2e-12
    """DRAM access energy (J/B). Source: O'Connor et al., "Fine-grained DRAM", MICRO 2017: HBM2 about
    3.9 pJ/bit. For HBM3/HBM3e no comparable public figure: the HBM2 value is kept (assumption)."""
    flop_j_fp16: float = 0.75e-12
    """Energy of one fp16 FLOP (J). Source: Horowitz, ISSCC 2014, 45 nm: fp16 add 0.4 pJ, mult 1.1 pJ,
    mean 0.75 pJ (an upper bound for 7 nm / 4 nm parts)."""
    flop_j_fp32: float = 2.3e-12
    """Energy of one fp32 FLOP (J). Source: Horowitz ISSCC 2014, 45 nm: fp32 add 0.9 pJ, mult 3.7 pJ."""
    optimal_synapses: int | None = None
    """Layer size of the "optimal" mode (synapses). None: the GPU's efficient size by the rule of
    :func:`efficient_synapses` (smallest power of two within ``efficient_tolerance`` of the
    bandwidth/compute-bound energy per synapse). The A100 preset sets the paper's measured ~2^21
    (PAPER.md); the rule gives 2^21 (fp32) and 2^22 (fp16) there, the same neighbourhood."""
    efficient_tolerance: float = 0.10
    """How close to its large-size asymptote the energy per synapse must be for a size to count as
    efficient (1). Assumption: 10 %."""

    def __post_init__(self) -> None:
        check_fields(self, {
            "memory_bandwidth_bps": (1e6, 1e15, "B/s"), "peak_flops_fp16": (1e6, 1e18, "FLOP/s"),
            "peak_flops_fp32": (1e6, 1e18, "FLOP/s"), "board_power_w": (1e-3, 1e5, "W"),
            "launch_latency_s": (0, 1, "s"), "dram_j_per_byte": (0, 1e-6, "J/B"),
            "flop_j_fp16": (0, 1e-6, "J"), "flop_j_fp32": (0, 1e-6, "J"),
            "efficient_tolerance": (1e-3, 10, ""),
        })
        if self.optimal_synapses is not None and not 1 <= self.optimal_synapses <= 1e12:
            raise EnergyConfigError(f"GPUSpec.optimal_synapses: must be None or in [1, 1e12] synapses, "
                                    f"got {self.optimal_synapses!r}")

    def peak_flops(self, precision: str) -> float:
        return self.peak_flops_fp16 if _bytes(precision) == 2 else self.peak_flops_fp32

    def flop_j(self, precision: str) -> float:
        return self.flop_j_fp16 if _bytes(precision) == 2 else self.flop_j_fp32

    def replace(self, **changes) -> GPUSpec:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


def a100_40gb() -> GPUSpec:
    """NVIDIA A100 40GB SXM4. Source: NVIDIA A100 Tensor Core GPU datasheet and architecture
    whitepaper (2020): HBM2 1,555 GB/s, FP32 19.5 TFLOP/s, FP16 (non-tensor) 78 TFLOP/s, TDP 400 W."""
    return GPUSpec("A100 40GB", 1.555e12, 78e12, 19.5e12, 400.0, optimal_synapses=2**21)


def h100_sxm() -> GPUSpec:
    """NVIDIA H100 SXM5 80GB. Source: NVIDIA H100 datasheet and Hopper whitepaper (2022): HBM3
    3.35 TB/s, FP32 67 TFLOP/s, FP16 (non-tensor) 133.8 TFLOP/s, TDP up to 700 W."""
    return GPUSpec("H100 SXM", 3.35e12, 133.8e12, 67e12, 700.0)


def h200_sxm() -> GPUSpec:
    """NVIDIA H200 SXM 141GB. Source: NVIDIA H200 datasheet (2024): HBM3e 4.8 TB/s, the H100 SXM's
    arithmetic (FP32 67 TFLOP/s, FP16 non-tensor 133.8 TFLOP/s), TDP up to 700 W."""
    return GPUSpec("H200 SXM", 4.8e12, 133.8e12, 67e12, 700.0)


PRESETS = {"a100": a100_40gb, "h100": h100_sxm, "h200": h200_sxm}


@dataclass(frozen=True)
class GPUCalibration:
    """The two constants calibrated on the paper's A100 fp16 figures (:func:`calibrate`).

    The defaults are the result of ``calibrate_to_paper()`` (a test keeps them in step); the same two
    values serve every preset: a software stack and kernels like the paper's (assumption).
    """

    host_overhead_s: float = 9.9191e-6
    """Host-side time to issue one operation in an eager framework (s). CALIBRATED on the A100 fp16
    "as written" figure. Plausibility: eager PyTorch ops take ~5-20 us each on the host."""
    bandwidth_efficiency: float = 0.6584
    """Achieved fraction of peak DRAM bandwidth for these element-wise / matrix-vector kernels (1).
    CALIBRATED on the A100 fp16 "optimal" figure. Plausibility: 60-90 % is usual for streaming kernels."""

    def __post_init__(self) -> None:
        check_fields(self, {"host_overhead_s": (0, 1, "s"), "bandwidth_efficiency": (1e-3, 1, "")})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class SynapticOp:
    """One GPU kernel: its name, DRAM bytes moved and arithmetic."""

    name: str
    bytes: float
    flops: float


def _bytes(precision: str) -> int:
    if precision not in PRECISIONS:
        raise EnergyConfigError(f"precision: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return PRECISIONS[precision]


def synaptic_ops(synapses: float, hidden: int, precision: str) -> list[SynapticOp]:
    """The three operations of one step on ``synapses`` synapses with ``hidden`` outputs."""
    if synapses <= 0 or hidden < 1:
        raise EnergyConfigError(f"synapses: must be > 0 and hidden >= 1, got {synapses!r}, {hidden!r}")
    e = _bytes(precision)
    s, h = float(synapses), float(hidden)
    n = s / h
    return [
        SynapticOp("transmission", e * (2 * s + n + h), 3 * s),
        SynapticOp("decay", e * 3 * s, s),
        SynapticOp("update", e * (3 * s + h + n), 3 * s),
    ]


def op_time(op: SynapticOp, spec: GPUSpec, precision: str, cal: GPUCalibration) -> float:
    """t_op = max(t_host, t_launch + max(bytes / (eta BW), FLOP / peak)) (s)."""
    device = spec.launch_latency_s + max(op.bytes / (cal.bandwidth_efficiency * spec.memory_bandwidth_bps),
                                         op.flops / spec.peak_flops(precision))
    return max(cal.host_overhead_s, device)


@dataclass(frozen=True)
class GPUStep:
    """Energy and time of one network step's synaptic operations (already scaled to the layer)."""

    board_j: float
    """P_board * time (J)."""
    dynamic_j: float
    """bytes e_DRAM + FLOP e_FLOP (J)."""
    dynamic_memory_j: float
    """The DRAM part of dynamic_j (J)."""
    time_s: float
    """Time of the step's operations at the size they ran, before scaling (s)."""
    per_op_j: dict
    """board_j of each operation (J)."""


def step_energy(spec: GPUSpec, precision: str, synapses: int, hidden: int = 64, mode: str = "optimal",
                cal: GPUCalibration | None = None) -> GPUStep:
    """One step of the layer on the GPU in ``mode`` ('optimal' or 'as_written')."""
    cal = cal or GPUCalibration()
    if mode not in MODES:
        raise EnergyConfigError(f"mode: must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "optimal":
        efficient = spec.optimal_synapses or efficient_synapses(spec, precision, hidden, cal)
        size = max(synapses, efficient)
    else:
        size = synapses
    scale = synapses / size
    ops = synaptic_ops(size, hidden, precision)
    times = {op.name: op_time(op, spec, precision, cal) for op in ops}
    mem = sum(op.bytes for op in ops) * spec.dram_j_per_byte
    arith = sum(op.flops for op in ops) * spec.flop_j(precision)
    return GPUStep(board_j=spec.board_power_w * sum(times.values()) * scale,
                   dynamic_j=(mem + arith) * scale, dynamic_memory_j=mem * scale,
                   time_s=sum(times.values()),
                   per_op_j={k: spec.board_power_w * t * scale for k, t in times.items()})


def efficient_synapses(spec: GPUSpec, precision: str, hidden: int = 64,
                       cal: GPUCalibration | None = None) -> int:
    """The GPU's efficient layer size: the smallest power of two (2^10 .. 2^36) at which the step's
    time per synapse is within ``spec.efficient_tolerance`` of its large-size limit
    sum(bytes/(eta BW) or FLOP/peak) per synapse, i.e. where latency and host overhead stop mattering."""
    cal = cal or GPUCalibration()
    size = 2**10
    for k in range(10, 37):
        size = 2**k
        ops = synaptic_ops(size, hidden, precision)
        limit = sum(max(op.bytes / (cal.bandwidth_efficiency * spec.memory_bandwidth_bps),
                        op.flops / spec.peak_flops(precision)) for op in ops)
        actual = sum(op_time(op, spec, precision, cal) for op in ops)
        if actual <= (1.0 + spec.efficient_tolerance) * limit:
            return size
    return size


def game_energy_j(spec: GPUSpec, precision: str, mode: str, steps: float, synapses: int,
                  hidden: int = 64, cal: GPUCalibration | None = None) -> float:
    """Board energy of one game of ``steps`` network steps (J)."""
    return steps * step_energy(spec, precision, synapses, hidden, mode, cal).board_j


def gpu_table(steps: float, synapses: int, hidden: int = 64, cal: GPUCalibration | None = None,
              presets: dict | None = None) -> dict:
    """``{preset: {precision: {mode: mJ per game}}}`` plus the dynamic lower bound, for every preset."""
    presets = presets or {k: f() for k, f in PRESETS.items()}
    table: dict = {}
    for key, spec in presets.items():
        table[key] = {}
        for precision in PRECISIONS:
            table[key][precision] = {}
            for mode in MODES:
                step = step_energy(spec, precision, synapses, hidden, mode, cal)
                table[key][precision][mode] = steps * step.board_j * 1e3
                table[key][precision][f"{mode}_dynamic"] = steps * step.dynamic_j * 1e3
                table[key][precision][f"{mode}_memory_share"] = step.dynamic_memory_j / step.dynamic_j
    return table


def _brent(f, lo: float, hi: float, what: str) -> float:
    from scipy.optimize import brentq

    f_lo, f_hi = f(lo), f(hi)
    if f_lo * f_hi > 0:
        raise EnergyConfigError(f"calibration: no {what} in [{lo:g}, {hi:g}] reproduces the target "
                                f"(residuals {f_lo:.3g}, {f_hi:.3g}); check the spec and the targets")
    return brentq(f, lo, hi, xtol=1e-15, rtol=1e-12)


def calibrate(spec: GPUSpec, optimal_j: float, as_written_j: float, steps: float, synapses: int,
              hidden: int = 64, precision: str = "fp16") -> GPUCalibration:
    """Solve for (host_overhead_s, bandwidth_efficiency) so the model gives both per-game figures.

    For each efficiency the host overhead is solved from the as-written figure (monotone), then the
    efficiency from the optimal figure (monotone). Raises :class:`EnergyConfigError` when no pair in
    host overhead [0, 1 ms], efficiency [0.01, 1] fits.
    """

    def as_written(host: float, eta: float) -> float:
        cal = GPUCalibration(host, eta)
        return game_energy_j(spec, precision, "as_written", steps, synapses, hidden, cal) - as_written_j

    def with_host(eta: float) -> GPUCalibration:
        return GPUCalibration(_brent(lambda h: as_written(h, eta), 0.0, 1e-3, "host overhead"), eta)

    def resid_opt(eta: float) -> float:
        cal = with_host(eta)
        return game_energy_j(spec, precision, "optimal", steps, synapses, hidden, cal) - optimal_j

    # below some efficiency the device time alone exceeds the as-written figure: start above it
    lo = next((eta for eta in (0.01 * 1.1**k for k in range(49)) if as_written(0.0, eta) <= 0), None)
    if lo is None:
        raise EnergyConfigError("calibration: the as-written figure is below the model's device time at "
                                "any bandwidth efficiency <= 1; check the spec and the targets")
    return with_host(_brent(resid_opt, lo, 1.0, "bandwidth efficiency"))
