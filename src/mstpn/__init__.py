"""mstpn: neural networks whose synapses are memristors with long-term, short-term and meta-plasticity."""

__version__ = "0.1.0"
