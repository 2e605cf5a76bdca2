"""mstpn.rl"""
