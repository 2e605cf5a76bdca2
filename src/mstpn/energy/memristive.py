"""Memristive energy of an m-STPN layer, per network step and per game, from its energy probe.

The probe of :class:`mstpn.nn.MSTPNCell` (``enable_energy_probe()``) appends one record per step with
the device energies it computed from the device physics (:mod:`mstpn.devices.physics`), summed over
the batch:

    read_j       sum over read devices of (V_r z_j)^2 G t_read        reads of G z
    hold_j       sum over devices of V_b^2 G dt_step + P_leak(V_b) dt_step   bias hold (decay)
    hold_leak_j  the P_leak part of hold_j (P_leak = p_leak_ref (V_b / v_leak_ref)^2)
    pulse_j      sum over written devices of n_pulses V_p^2 G t_p     short-term (dF) writes
    writes, pulses, synapses, batch, tau_mean_s

Two boundaries:

* ``synaptic`` (the paper's): reads, bias hold (ohmic + leakage) and write pulses of the synapses.
* ``system``: the synaptic energy plus what the circuits around the array spend, each term a
  :class:`SystemCosts` field: supply losses of the drivers, charging the row and column lines,
  the DAC conversion of each presynaptic input, the ADC conversion of each postsynaptic output, and
  the digital neuron side (presynaptic normalisation, tanh, the dF magnitudes gamma h z of every
  synapse and the reads of gamma from SRAM).

Long-term programming (loading W) is a one-off per deployment: :mod:`mstpn.energy.programming`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from mstpn.energy.validate import EnergyConfigError, check_fields

BOUNDARIES = ("synaptic", "system")
SYNAPTIC_PARTS = ("read", "hold_ohmic", "hold_leak", "pulses")
"""Components of the synaptic boundary; the paper's 'decay' is hold_ohmic + hold_leak."""
SYSTEM_EXTRA_PARTS = ("drivers", "lines", "dac", "adc", "neuron")
"""Components the system boundary adds to the synaptic ones."""
RECORD_KEYS = ("read_j", "hold_j", "hold_leak_j", "pulse_j", "writes", "pulses", "synapses", "batch")


@dataclass(frozen=True)
class SystemCosts:
    """Energy of the circuits around the array (system boundary). Every field is overridable.

    Converter energies follow the Walden figure of merit, E = FoM_W * 2^ENOB per conversion, the
    measure B. Murmann's "ADC Performance Survey 1997-2024" (github.com/bmurmann/ADC-survey) tabulates
    for every ISSCC/VLSI design (column FOMW_hf, fJ/conv-step). These are order-of-magnitude
    engineering values, not one design's datasheet.
    """

    adc_enob: float = 8.0
    """Effective resolution of the output ADC (bits). Assumption: 8 bits, common in memristive
    in-memory-computing studies; an 8-bit ENOB is ~50 dB SNDR."""
    adc_fom_walden_j: float = 5e-15
    """ADC Walden figure of merit (J per conversion-step). Source: Murmann ADC survey 1997-2024, where
    well-designed low-to-medium-speed SAR converters of the last decade lie around 1-10 fJ/conv-step
    (the best below 1); 5 fJ is a mid value read off the survey, so E_adc = 5 fJ * 2^8 = 1.28 pJ."""
    dac_bits: float = 8.0
    """Resolution of the input DAC that sets each presynaptic read voltage (bits). Assumption."""
    dac_fom_j: float = 5e-15
    """DAC energy per conversion-step (J). Assumption: the ADC survey's Walden FoM is reused, there is
    no comparable DAC survey; E_dac = 5 fJ * 2^8 = 1.28 pJ per input per step."""
    line_c_per_cell_f: float = 0.2e-15
    """Wire capacitance a row or column line adds per crosspoint (F). Assumption: ~0.2 fF/um, the usual
    on-chip interconnect value (ITRS/IRDS interconnect tables), at a 1 um cell pitch."""
    driver_efficiency: float = 0.5
    """Fraction of supply energy the read, bias and write drivers deliver to the array (1). Assumption:
    a linear driver holding 0.6 V from a 1.2 V rail delivers V_out / V_dd = 50 %."""
    mac_j: float = 0.23e-12
    """Digital 8-bit multiply-accumulate (J). Source: M. Horowitz, "Computing's energy problem",
    ISSCC 2014, 45 nm: 8-bit integer multiply 0.2 pJ + add 0.03 pJ (an upper bound for newer nodes)."""
    sram_j_per_byte: float = 1.25e-12
    """SRAM read energy per byte (J). Source: Horowitz ISSCC 2014, 45 nm: 8 kB SRAM, 64-bit read 10 pJ."""
    param_bytes: float = 1.0
    """Bytes per stored plasticity coefficient gamma, read every step to compute dF (B). Assumption: 8 bit."""
    df_macs_per_synapse: float = 2.0
    """Digital operations per synapse per step for dF = gamma h z (1): two multiplies (the threshold
    compare is folded in). From the m-STPN equation (PAPER.md)."""
    norm_macs_per_input: float = 2.0
    """Operations per presynaptic input for z / ||z||: a square-accumulate and a scaling (1)."""
    tanh_macs: float = 10.0
    """MAC-equivalents of one tanh plus bias add on the neuron side (1). Assumption (piecewise-linear or
    small lookup-table tanh)."""

    def __post_init__(self) -> None:
        check_fields(self, {
            "adc_enob": (1, 24, "bits"), "adc_fom_walden_j": (0, 1e-9, "J/conv-step"),
            "dac_bits": (1, 24, "bits"), "dac_fom_j": (0, 1e-9, "J/conv-step"),
            "line_c_per_cell_f": (0, 1e-12, "F"), "driver_efficiency": (1e-3, 1, ""),
            "mac_j": (0, 1e-9, "J"), "sram_j_per_byte": (0, 1e-9, "J/B"), "param_bytes": (0, 8, "B"),
            "df_macs_per_synapse": (0, 100, ""), "norm_macs_per_input": (0, 100, ""),
            "tanh_macs": (0, 1000, ""),
        })

    @property
    def adc_j(self) -> float:
        """Energy of one ADC conversion (J): FoM_W 2^ENOB."""
        return self.adc_fom_walden_j * 2.0**self.adc_enob

    @property
    def dac_j(self) -> float:
        """Energy of one DAC conversion (J): FoM 2^bits."""
        return self.dac_fom_j * 2.0**self.dac_bits

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class CellInfo:
    """What the system boundary needs to know about the layer beyond its probe records."""

    input_size: int
    """Presynaptic inputs from outside the layer, I (1); z has N = I + H entries."""
    hidden_size: int
    """Postsynaptic neurons, H (1)."""
    dt_step: float = 4 / 60
    """Duration of one network step the probe integrated the hold over (s); MSTPNConfig.dt_step."""
    v_read: float = 0.2
    """Read voltage of a unit presynaptic input (V); MSTPNConfig.v_read."""
    pulse_v: float = 0.8
    """Amplitude of a short-term write pulse (V); MSTPNConfig.pulse_v."""
    devices_per_synapse: int = 2
    """Devices per synapse (1): 2 for the differential pair of the m-STPN mapping (DESIGN.md)."""
    programming_j: float = 0.0
    """Energy to program the long-term weights W from g_min, once per deployment (J); see
    :mod:`mstpn.energy.programming`."""
    programming_pulses: float = 0.0
    """Programming pulses that took (1)."""

    def __post_init__(self) -> None:
        check_fields(self, {
            "input_size": (1, 1e9, ""), "hidden_size": (1, 1e9, ""), "dt_step": (1e-9, 1e6, "s"),
            "v_read": (0, 100, "V"), "pulse_v": (0, 100, "V"), "devices_per_synapse": (1, 2, ""),
            "programming_j": (0, 1e9, "J"), "programming_pulses": (0, 1e18, ""),
        })

    @property
    def presynaptic(self) -> int:
        """N = I + H, the length of z (1)."""
        return self.input_size + self.hidden_size

    @property
    def synapses(self) -> int:
        return self.presynaptic * self.hidden_size

    @classmethod
    def from_cell(cls, cell, *, program: bool = True, programming=None) -> CellInfo:
        """Read sizes and voltages from an :class:`mstpn.nn.MSTPNCell`; optionally price loading W."""
        cfg = cell.config
        prog_j = prog_n = 0.0
        if program:
            from mstpn.energy.programming import program_cell

            result = program_cell(cell, programming)
            prog_j, prog_n = result.total_j, result.pulses
        return cls(input_size=cell.input_size, hidden_size=cell.hidden_size, dt_step=cfg.dt_step,
                   v_read=cfg.v_read, pulse_v=cfg.pulse_v, programming_j=prog_j,
                   programming_pulses=prog_n)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _check_record(record: dict, index: int) -> None:
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise EnergyConfigError(f"probe record {index}: missing {', '.join(missing)} "
                                f"(expected the keys MSTPNCell's energy probe writes)")
    if record["batch"] < 1:
        raise EnergyConfigError(f"probe record {index}: batch must be >= 1, got {record['batch']!r}")


def step_energy(record: dict, info: CellInfo, system: SystemCosts | None = None,
                step_duration_s: float | None = None) -> dict[str, float]:
    """Energy of one step of one game (one batch element), by component (J).

    The probe sums over the batch; this divides by it. ``step_duration_s`` rescales the bias hold
    when a step really lasted longer or shorter than the ``dt_step`` the probe integrated over.
    Always returns the synaptic parts and ``writes`` / ``pulses`` counts; with ``system`` also the
    system parts (see :data:`SYSTEM_EXTRA_PARTS`).
    """
    b = float(record["batch"])
    hold_scale = 1.0 if step_duration_s is None else step_duration_s / info.dt_step
    leak = record["hold_leak_j"] / b * hold_scale
    parts = {
        "read": record["read_j"] / b,
        "hold_ohmic": (record["hold_j"] - record["hold_leak_j"]) / b * hold_scale,
        "hold_leak": leak,
        "pulses": record["pulse_j"] / b,
        "n_writes": record["writes"] / b,
        "n_pulses": record["pulses"] / b,
    }
    if system is not None:
        parts.update(system_step_energy(parts, info, system))
    return parts


def system_step_energy(synaptic: dict[str, float], info: CellInfo,
                       system: SystemCosts) -> dict[str, float]:
    """The system boundary's extra terms for one step of one game (J).

    drivers  (read + hold + pulses) (1/eta - 1)                supply loss of the drivers
    lines    C_row V_r^2 + n_pulses (C_row + C_col) V_p^2      line charging; sum z_j^2 = 1 after
             with C_row = d H c, C_col = N c                   the presynaptic normalisation
    dac      N E_dac;   adc   H E_adc                          one conversion per input / output
    neuron   E_mac (k_dF S + k_norm N + k_tanh H) + E_sram b_gamma S
    """
    n, h = info.presynaptic, info.hidden_size
    s = n * h
    delivered = synaptic["read"] + synaptic["hold_ohmic"] + synaptic["hold_leak"] + synaptic["pulses"]
    c_row = info.devices_per_synapse * h * system.line_c_per_cell_f
    c_col = n * system.line_c_per_cell_f
    lines = c_row * info.v_read**2 + synaptic["n_pulses"] * (c_row + c_col) * info.pulse_v**2
    neuron = system.mac_j * (system.df_macs_per_synapse * s + system.norm_macs_per_input * n
                             + system.tanh_macs * h) + system.sram_j_per_byte * system.param_bytes * s
    return {
        "drivers": delivered * (1.0 / system.driver_efficiency - 1.0),
        "lines": lines,
        "dac": n * system.dac_j,
        "adc": h * system.adc_j,
        "neuron": neuron,
    }


def boundary_total(parts: dict[str, float], boundary: str) -> float:
    """Sum of the components inside ``boundary`` ('synaptic' or 'system') (J)."""
    if boundary not in BOUNDARIES:
        raise EnergyConfigError(f"boundary: must be one of {', '.join(BOUNDARIES)}, got {boundary!r}")
    names = SYNAPTIC_PARTS + (SYSTEM_EXTRA_PARTS if boundary == "system" else ())
    return sum(parts[k] for k in names)


def game_slices(records: Sequence[dict], steps_per_game: Sequence[int]) -> list[list[dict]]:
    """Assign probe records to games; two layouts are understood.

    * sequential: games played one after the other with batch 1; ``len(records) == sum(steps)``.
    * lockstep: the games played in parallel as one batch (``batch == len(steps)`` in every record),
      each until its end, so ``len(records) == max(steps)`` and game g takes part in the first
      ``steps[g]`` records. The probe sums over the batch, so each game is given the batch mean of a
      step (:func:`step_energy` divides by the batch): exact for the totals over games, an
      approximation for the split between games.
    """
    steps = [int(s) for s in steps_per_game]
    if not steps or min(steps) < 1:
        raise EnergyConfigError(f"steps_per_game: need at least one game of >= 1 step, got {steps!r}")
    for i, record in enumerate(records):
        _check_record(record, i)
    batches = {int(r["batch"]) for r in records}
    if batches == {1} and len(records) == sum(steps):
        out, start = [], 0
        for s in steps:
            out.append(list(records[start:start + s]))
            start += s
        return out
    if batches == {len(steps)} and len(records) == max(steps):
        return [list(records[:s]) for s in steps]
    raise EnergyConfigError(
        f"steps_per_game: {len(steps)} games of {sum(steps)} steps in all do not match {len(records)} "
        f"probe records with batch sizes {sorted(batches)}; expected either sequential games "
        f"(batch 1, one record per step of every game) or lockstep games (batch = number of games, "
        f"one record per step of the longest game)")


def game_energies(records: Sequence[dict], steps_per_game: Sequence[int], info: CellInfo,
                  system: SystemCosts | None = None, step_duration_s: float | None = None
                  ) -> list[dict[str, float]]:
    """Per game: every component summed over the game's steps (J), the counts, and both totals."""
    games = []
    for steps, recs in zip(steps_per_game, game_slices(records, steps_per_game), strict=True):
        total: dict[str, float] = {}
        for record in recs:
            for key, value in step_energy(record, info, system, step_duration_s).items():
                total[key] = total.get(key, 0.0) + value
        total["steps"] = float(steps)
        total["synaptic_total"] = boundary_total(total, "synaptic")
        if system is not None:
            total["system_total"] = boundary_total(total, "system")
        games.append(total)
    return games
