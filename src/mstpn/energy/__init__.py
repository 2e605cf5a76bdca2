"""Energy of the m-STPN's synaptic operations against a GPU, per network step and per game.

- :mod:`mstpn.energy.memristive`  reads, bias hold, write pulses (synaptic) + converters, drivers,
  neuron side (system), from MSTPNCell's energy probe
- :mod:`mstpn.energy.programming` loading the long-term weights W (once per deployment)
- :mod:`mstpn.energy.gpu`         analytical GPU model (roofline with latency x board power), presets
- :mod:`mstpn.energy.gpu_measure` NVML-measured GPU energy where a CUDA GPU exists
- :mod:`mstpn.energy.paper`       the paper's table under its assumptions, fp32 validation
- :mod:`mstpn.energy.report`      per-game report from probe records, both boundaries, every preset
- :mod:`mstpn.energy.sweep`       energy against write threshold, bias range, conductance scale
"""

from mstpn.energy.gpu import GPUCalibration, GPUSpec, a100_40gb, h100_sxm, h200_sxm
from mstpn.energy.memristive import CellInfo, SystemCosts, game_energies, step_energy
from mstpn.energy.paper import PaperAssumptions, format_paper_table, reproduce_paper
from mstpn.energy.programming import ProgrammingConfig, program_cell
from mstpn.energy.report import energy_report_from_probe, format_report
from mstpn.energy.validate import EnergyConfigError

__all__ = [
    "CellInfo", "EnergyConfigError", "GPUCalibration", "GPUSpec", "PaperAssumptions", "ProgrammingConfig",
    "SystemCosts", "a100_40gb", "energy_report_from_probe", "format_paper_table", "format_report",
    "game_energies", "h100_sxm", "h200_sxm", "program_cell", "reproduce_paper", "step_energy",
]
