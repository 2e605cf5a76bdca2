"""mstpn.nn"""
