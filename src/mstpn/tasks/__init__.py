"""mstpn.tasks"""
