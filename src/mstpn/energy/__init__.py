"""mstpn.energy"""
