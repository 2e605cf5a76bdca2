"""The memristive STPN cell: every synapse a differential pair of devices (DESIGN.md, "m-STPN mapping").

Weights are in *weight units*; one unit is ``g_unit = (g_max - g_min) / w_max`` siemens of conductance
difference between the pair, ``w = (G+ - G-) / g_unit``. W sits in the long-term conductances, F in
the volatile ones. Positive weight sits on G+, negative on G-, so the written device of a pair is
the + one for dF > 0 and the - one for dF < 0, and its conductance is
``g_min + g_unit (relu(s W) + relu(s F))`` with s = sign(dF).

Per step (all device physics from :mod:`mstpn.devices.physics`):
- lambda = exp(-dt_step / tau(V_b)) per synapse, V_b learned inside [v_b_min, v_b_max] (optionally
  snapped to ``bias_levels`` levels, straight-through), tau0 with the device-to-device spread;
- z is normalised to unit L2 norm (presynaptic normalisation, neuron side), read as G z with read
  noise (aggregated per output: exact in distribution for independent per-device noise);
- dF = gamma h z^T is written as a whole number of identical pulses (``pulse_v``, ``pulse_width``),
  counted against the nominal per-pulse increment, skipped below ``write_threshold`` pulses (sparse
  writes), capped at ``max_pulses``; each device answers with its own a_st, its soft bound and
  cycle-to-cycle noise; the result is clipped to the pair's conductance range.
Gradients are straight-through for every non-ideality, so training is hardware-aware.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor, nn

from mstpn.devices import physics
from mstpn.devices.noise import NoiseSource
from mstpn.devices.params import SrTiO3Params, srtio3_weilenmann2024
from mstpn.devices.physics import DeviceState, DeviceTensors
from mstpn.errors import UserError
from mstpn.nn.mstpn_kernels import (
    MSTPNStep,
    StepConstants,
    WriteConsts,
    device_write,
    pair_constants,
    read_noise_std,
)
from mstpn.nn.stpn_step import NORM_EPS, STPNState, fused_step, use_compiled, zero_state


@dataclass(frozen=True)
class MSTPNConfig:
    """How the STPN maps onto devices; every non-ideality can be switched off."""

    dt_step: float = 4 / 60
    """Real time of one network step (s); 4 frames at 60 Hz for Pong with frame skip 4."""
    v_b_min: float = -0.6
    """Lowest bias voltage the driver can hold on a synapse (V)."""
    v_b_max: float = 0.6
    """Highest bias voltage the driver can hold on a synapse (V)."""
    bias_levels: int = 0
    """Number of bias levels the driver offers, evenly spaced in [v_b_min, v_b_max]; 0 = continuous."""
    w_max: float = 1.0
    """Weight magnitude that spans one device's whole range g_max - g_min (weight units)."""
    pulse_v: float = 0.8
    """Amplitude of the short-term write pulse (V); below v_th, so the write is volatile."""
    pulse_width: float = 1e-4
    """Width of the short-term write pulse (s)."""
    max_pulses: int = 16
    """Most pulses one synapse can take in one step."""
    write_threshold: float = 1.0
    """Smallest write, in pulses; smaller dF are not written (sparse updates). 0 writes everything."""
    quantize: bool = True
    """Write whole pulses (True) or any analogue amount (False)."""
    soft_bounds: bool = True
    """Pulse increments shrink as the written device nears g_max."""
    clip_range: bool = True
    """Keep both devices of a pair inside [g_min, g_max]."""
    c2c_noise: bool = True
    """Cycle-to-cycle noise on every write (sigma from the device parameters)."""
    read_noise: bool = True
    """Read noise on every G z (sigma from the device parameters)."""
    d2d_variability: bool = True
    """Device-to-device spread of a_st, tau0, g_min, g_max (sigma from the device parameters)."""
    row_norm: bool = False
    """Normalise by the row norm of G as the STPN does (True) instead of presynaptic z / ||z||."""
    plasticity_init: float = 4.0
    """gamma ~ U(+-plasticity_init / sqrt(H)) (1). Far larger than the STPN's 0.001 because z has unit
    norm here (elements ~ 1/sqrt(N)): at H = 64 it gives |dF| of about one write pulse for the
    strongest inputs, so some synapses write from the first step and most stay below threshold."""
    v_read: float = 0.2
    """Read voltage of a presynaptic input of value 1 (V); energy probe only."""
    t_read: float = 1e-6
    """Duration of one read (s); energy probe only."""
    compile: str = "auto"
    """torch.compile the step kernels: "auto" (on the CPU at >= 250,000 synapse states per step),
    "always", "never"."""

    def __post_init__(self) -> None:
        checks = {
            "dt_step": self.dt_step > 0, "w_max": self.w_max > 0, "pulse_width": self.pulse_width > 0,
            "pulse_v": self.pulse_v > 0, "max_pulses": self.max_pulses >= 1,
            "write_threshold": self.write_threshold >= 0, "bias_levels": self.bias_levels in (0,) or
            self.bias_levels >= 2, "plasticity_init": self.plasticity_init >= 0,
            "v_read": self.v_read > 0, "t_read": self.t_read > 0,
            "compile": self.compile in ("auto", "always", "never"),
        }
        for name, ok in checks.items():
            if not ok:
                raise UserError(f"MSTPNConfig.{name}: out of range, got {getattr(self, name)!r}")
        if not self.v_b_min < self.v_b_max:
            raise UserError(f"MSTPNConfig.v_b_min: must be < v_b_max ({self.v_b_max}), got {self.v_b_min}")

    @classmethod
    def ideal(cls, **overrides) -> MSTPNConfig:
        """Every non-ideality off and the STPN's row normalisation: computes what STPNCell computes."""
        off = {f.name: False for f in fields(cls) if f.type in ("bool", bool)}
        off.update(row_norm=True, write_threshold=0.0, v_b_min=-20.0, v_b_max=20.0, max_pulses=10**12)
        off.update(overrides)
        return cls(**off)

    def replace(self, **changes) -> MSTPNConfig:
        return replace(self, **changes)


class MSTPNCell(nn.Module):
    """Device-backed STPN layer; same interface and state as :class:`mstpn.nn.STPNCell`.

    Parameters: ``weight`` (H x N), ``bias`` (H), ``bias_logit`` (H x N; V_b = v_b_min +
    (v_b_max - v_b_min) sigmoid(bias_logit)), ``plasticity`` (H x N). ``decay`` is derived from the
    bias voltage and the device, not free.

    ``seed`` fixes the device-to-device draw and the noise stream (seed + 1); without it both come
    from the global torch RNG, so two cells get independent devices and noise. The noise source's
    state is part of ``state_dict`` (extra state), so a saved and restored cell continues its stream.
    """

    LEGACY_NOISE_SEED = 1
    """Noise seed of cells saved before the noise state was part of ``state_dict`` (all used seed 1)."""

    def __init__(self, input_size: int, hidden_size: int, params: SrTiO3Params | None = None,
                 config: MSTPNConfig | None = None, *, seed: int | None = None) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"input_size and hidden_size must be >= 1, got {input_size}, {hidden_size}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.params = params or srtio3_weilenmann2024()
        self.config = config or MSTPNConfig()
        cfg = self.config
        n = input_size + hidden_size
        self.weight = nn.Parameter(torch.empty(hidden_size, n))
        self.bias = nn.Parameter(torch.empty(hidden_size))
        self.bias_logit = nn.Parameter(torch.empty(hidden_size, n))
        self.plasticity = nn.Parameter(torch.empty(hidden_size, n))
        if seed is None:  # from the global torch RNG: reproducible after torch.manual_seed, new per cell
            seed = int(torch.randint(0, 2**31 - 1, (1,)))
        self.seed = int(seed)
        devices = DeviceTensors.sample(self.params, (hidden_size, n), seed=self.seed,
                                       variability=cfg.d2d_variability)
        # Buffers: per-synapse device properties, fixed for the life of the array.
        self.register_buffer("tau0", devices.tau0)
        self.register_buffer("g_min", devices.g_min)
        self.register_buffer("g_max", devices.g_max)
        self.register_buffer("a_st", devices.a_st)
        self.noise = NoiseSource(self.seed + 1)
        self.energy_log: list[dict[str, float]] | None = None
        self._constants: StepConstants | None = None
        self._constants_key: tuple | None = None
        self.reset_parameters()

    # ------------------------------------------------------------------ derived device quantities
    @property
    def num_synapses(self) -> int:
        return self.weight.numel()

    @property
    def g_unit(self) -> float:
        """Conductance difference of one weight unit (S)."""
        return (self.params.g_max - self.params.g_min) / self.config.w_max

    def devices(self) -> DeviceTensors:
        """The synapses' device parameters as :class:`DeviceTensors` (shape H x N)."""
        return DeviceTensors(self.g_min, self.g_max, self.a_st, torch.full_like(self.a_st, self.params.a_lt),
                             self.tau0, self.params)

    def nominal_pulse_step(self) -> float:
        """Weight change of one write pulse on a nominal device far from its bounds (weight units)."""
        drive = float(physics.pulse_drive(self.config.pulse_v, self.config.pulse_width, self.params))
        return self.params.a_st * drive / self.g_unit

    def bias_voltage(self) -> Tensor:
        """Each synapse's bias voltage V_b (V), quantised to the driver's levels if configured."""
        return self._bias_voltage(self.bias_logit)

    def _bias_voltage(self, logit: Tensor) -> Tensor:
        cfg = self.config
        v = cfg.v_b_min + (cfg.v_b_max - cfg.v_b_min) * torch.sigmoid(logit)
        if cfg.bias_levels:
            step = (cfg.v_b_max - cfg.v_b_min) / (cfg.bias_levels - 1)
            snapped = cfg.v_b_min + torch.round((v - cfg.v_b_min) / step) * step
            v = v + (snapped - v).detach()
        return v

    def decay(self) -> Tensor:
        """lambda = exp(-dt_step / tau(V_b)) per synapse (differentiable in the bias)."""
        return physics.decay_factor(self.bias_voltage(), self.config.dt_step, self.devices())

    def w_max_per_synapse(self) -> Tensor:
        """Each pair's range in weight units (device-to-device spread included)."""
        return (self.g_max - self.g_min) / self.g_unit

    # ------------------------------------------------------------------ parameters and state
    def get_extra_state(self) -> dict:
        """The noise source's state (saved with the module)."""
        return {"noise": self.noise.state_dict()}

    def set_extra_state(self, state: dict) -> None:
        self.noise.load_state_dict(state["noise"], device=self.tau0.device)

    def reseed_noise(self, seed: int) -> None:
        """Restart the noise stream from ``seed`` (e.g. per evaluation, so a game seed fixes the noise)."""
        self.noise = NoiseSource(seed)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        key = prefix + "_extra_state"
        if key not in state_dict:  # a state saved before the noise state was: restart its stream
            if key in missing_keys:
                missing_keys.remove(key)
            self.reseed_noise(self.LEGACY_NOISE_SEED)

    def reset_parameters(self) -> None:
        """W, b ~ U(+-1/sqrt(H)); lambda ~ U(0, 1) mapped to a bias voltage; gamma ~ U(+-init/sqrt(H))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        g = self.config.plasticity_init * bound
        nn.init.uniform_(self.plasticity, -g, g)
        with torch.no_grad():
            self.set_decay(torch.rand_like(self.weight).clamp(1e-4, 1 - 1e-4))

    @torch.no_grad()
    def set_decay(self, decay: Tensor) -> None:
        """Choose each synapse's bias so that lambda equals ``decay`` (clamped to what the range allows)."""
        cfg = self.config
        tau = -cfg.dt_step / torch.log(decay.to(self.tau0.dtype).clamp(1e-12, 1 - 1e-12))
        v = self.params.v_tau * torch.log(tau / self.tau0)
        frac = ((v - cfg.v_b_min) / (cfg.v_b_max - cfg.v_b_min)).clamp(1e-6, 1 - 1e-6)
        self.bias_logit.copy_(torch.log(frac) - torch.log1p(-frac))

    @torch.no_grad()
    def load_from_stpn(self, cell: nn.Module) -> None:
        """Copy W, b, gamma and lambda (through the bias) from an STPNCell of the same size."""
        self.weight.copy_(cell.weight)
        self.bias.copy_(cell.bias)
        self.plasticity.copy_(cell.plasticity)
        self.set_decay(cell.decay.detach())

    def initial_state(self, batch_size: int, *, device: torch.device | None = None,
                      dtype: torch.dtype | None = None) -> STPNState:
        """All-zero state (h, F) for ``batch_size`` sequences."""
        return zero_state(self.weight, batch_size, device=device, dtype=dtype)

    # ------------------------------------------------------------------ the step
    def write_consts(self, record: bool = False) -> WriteConsts:
        """The static settings of the write/read kernels for this cell."""
        cfg = self.config
        return WriteConsts(
            inv_step=1.0 / self.nominal_pulse_step(), max_pulses=float(cfg.max_pulses),
            threshold=float(cfg.write_threshold), quantize=cfg.quantize, soft_bounds=cfg.soft_bounds,
            clip_range=cfg.clip_range,
            c2c_sigma=self.params.c2c_sigma if cfg.c2c_noise else 0.0,
            read_sigma=self.params.read_sigma if cfg.read_noise else 0.0,
            u=self.params.g_min / self.g_unit, record=record)

    @torch.no_grad()
    def step_constants(self, dtype: torch.dtype) -> StepConstants:
        """What the parameters and devices imply per synapse, recomputed only when one of them changed.

        Keyed on the storage and version counter of every tensor it is derived from, so an optimizer
        step, ``load_state_dict`` or ``.to()`` invalidates it.
        """
        sources = (self.weight, self.bias_logit, self.tau0, self.g_min, self.g_max, self.a_st)
        key = (dtype, *((t.data_ptr(), t._version) for t in sources))
        if self._constants_key != key:
            with torch.enable_grad():
                logit = self.bias_logit.detach().requires_grad_()
                decay = physics.decay_factor(self._bias_voltage(logit), self.config.dt_step, self.devices())
                (d_decay,) = torch.autograd.grad(decay.sum(), logit)
            w_max = self.w_max_per_synapse()
            gain = self.a_st / self.params.a_st if self.config.d2d_variability else torch.ones_like(self.a_st)
            pulse_step = self.nominal_pulse_step() * gain
            tensors = (self.weight, decay, d_decay, pulse_step, w_max)
            self._constants = pair_constants(*(t.detach().to(dtype) for t in tensors),
                                             clip=self.config.clip_range)
            self._constants_key = key
        return self._constants

    def forward(self, x: Tensor, state: STPNState | None = None) -> tuple[Tensor, STPNState]:
        """One step: x (B, I) -> h (B, H) and the new state."""
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"x: expected shape (batch, {self.input_size}), got {tuple(x.shape)}")
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        record = self.energy_log is not None
        k = self.write_consts(record)
        shape_f = state.f.shape
        c2c_eps = self._normal(shape_f, x) if k.c2c_sigma > 0 else None
        read_eps = self._normal(shape_f[:2], x) if k.read_sigma > 0 else None
        if self.config.row_norm:
            h, new_state, pulses = self._row_norm_step(x, state, c2c_eps, read_eps, k)
        else:
            z = torch.cat([x, state.h], dim=-1)
            z = z / (torch.linalg.vector_norm(z, dim=-1, keepdim=True) + NORM_EPS)
            compiled = use_compiled(self.config.compile, x.shape[0] * self.num_synapses, x.device)
            h, f_new, pulses = MSTPNStep.apply(z, state.f, self.weight, self.bias, self.bias_logit,
                                               self.plasticity, self.step_constants(x.dtype), c2c_eps,
                                               read_eps, k, compiled)
            new_state = STPNState(h, f_new)
        if record:
            self.energy_log.append(self._energy(x, state, new_state.f, pulses))
        return h, new_state

    def _normal(self, shape: torch.Size, like: Tensor) -> Tensor:
        return self.noise.normal(shape, dtype=like.dtype, device=like.device)

    def _row_norm_step(self, x, state, c2c_eps, read_eps, k):
        """The STPN's row-normalised step with the device write and read as hooks (eager).

        Gradients of lambda and the clipped W flow through autograd here (not through the constants).
        """
        cfg = self.config
        c = self.step_constants(x.dtype)
        weight = self.weight + (c.weight - self.weight).detach()
        captured: list[Tensor] = []

        def write(f_decayed: Tensor, d_f: Tensor) -> Tensor:
            f_new, pulses = device_write(f_decayed, d_f, c, c2c_eps, k)
            captured.append(pulses)
            return f_new

        writes_anything = (cfg.quantize or cfg.write_threshold > 0 or cfg.soft_bounds or cfg.clip_range
                           or c2c_eps is not None or cfg.d2d_variability or k.record)
        read_noise = None
        if read_eps is not None:
            def read_noise(g: Tensor, z: Tensor) -> Tensor:
                return read_noise_std(g, z, k.u, k.read_sigma) * read_eps
        h, new_state = fused_step(x, state, weight, self.bias, self.decay().to(x.dtype), self.plasticity,
                                  row_norm=True, write=write if writes_anything else None,
                                  read_noise=read_noise)
        return h, new_state, (captured[0] if captured else None)

    # ------------------------------------------------------------------ energy probe
    def enable_energy_probe(self, enabled: bool = True) -> None:
        """Record per step: reads, bias hold and pulse energy (J, summed over the batch), writes."""
        self.energy_log = [] if enabled else None

    def pair_states(self, weight: Tensor, f: Tensor) -> tuple[DeviceState, DeviceState]:
        """The + and - device of every pair as device states (S): W long-term, F volatile.

        G+ = g_min + g_unit (relu(W) + relu(F)), G- = g_min + g_unit (relu(-W) + relu(-F)).
        """
        u = self.g_unit
        return tuple(DeviceState(self.g_min + u * torch.relu(s * weight), u * torch.relu(s * f))
                     for s in (1.0, -1.0))

    @torch.no_grad()
    def _energy(self, x: Tensor, state: STPNState, f_new: Tensor, pulses: Tensor | None
                ) -> dict[str, float]:
        """Energy of this step (J, summed over the batch), every term from :mod:`mstpn.devices.physics`.

        Reads: both devices of every pair at V = v_read z for t_read. Hold: each synapse's own bias
        over dt_step on both devices (decaying volatile part integrated exactly, plus leakage).
        Pulses: on the written device, from its decayed conductance to that after the write.
        ``pulses`` are signed pulse counts.
        """
        cfg = self.config
        z = torch.cat([x, state.h], dim=-1)
        if not cfg.row_norm:
            z = z / (torch.linalg.vector_norm(z, dim=-1, keepdim=True) + NORM_EPS)
        devices = self.devices()
        c = self.step_constants(x.dtype)
        weight = c.weight
        before = self.pair_states(weight, state.f)
        volts = (cfg.v_read * z).unsqueeze(-2)
        v_b = self.bias_voltage()
        read = hold = 0.0
        for s in before:
            read += float(physics.read_energy(physics.conductance(s), volts, cfg.t_read).sum())
            hold += float(physics.hold_energy(s, v_b, cfg.dt_step, devices).sum())
        leak = 2 * float(physics.leak_power(v_b, self.params).sum()) * cfg.dt_step * x.shape[0]
        pulse_j = writes = count = 0.0
        if pulses is not None:
            # the write follows the step's decay: it adds |F_new - lambda F (/ n)| to the written device
            f_decayed = c.decay * state.f
            if cfg.row_norm:
                norm = torch.linalg.vector_norm(state.f + weight, dim=-1, keepdim=True) + NORM_EPS
                f_decayed = f_decayed / norm
            decayed = self.pair_states(weight, f_decayed)
            up, n = pulses > 0, pulses.abs()
            g_before = torch.where(up, physics.conductance(decayed[0]), physics.conductance(decayed[1]))
            g_after = g_before + self.g_unit * (f_new - f_decayed).abs()
            pulse_j = float(physics.pulse_energy(cfg.pulse_v, g_before, g_after, cfg.pulse_width, n).sum())
            count, writes = float(n.sum()), float((n > 0).sum())
        return {"read_j": read, "hold_j": hold, "hold_leak_j": leak, "pulse_j": pulse_j,
                "writes": writes, "pulses": count, "synapses": float(self.num_synapses),
                "batch": x.shape[0],
                "tau_mean_s": float(physics.time_constant(v_b, devices).mean())}

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"g_unit={self.g_unit:.3g} S, pulse_step={self.nominal_pulse_step():.3g}")
