"""mstpn.report"""
