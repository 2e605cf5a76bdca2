"""Network layers: the STPN cell, the memristive m-STPN cell, baselines, and their step functions."""

from mstpn.nn.baselines import LSTMCell, LSTMState, RNNCell, RNNState
from mstpn.nn.mstpn import MSTPNCell, MSTPNConfig
from mstpn.nn.stpn import STPNCell
from mstpn.nn.stpn_step import STPNState, fused_step, reference_step

__all__ = ["LSTMCell", "LSTMState", "MSTPNCell", "MSTPNConfig", "RNNCell", "RNNState", "STPNCell",
           "STPNState", "fused_step", "reference_step"]
