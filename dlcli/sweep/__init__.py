"""Sweeps: running many points as ordinary runs, resumable point by point, on local processes or
Ray (`runner`, `backends`), and the plan of a bias-variance study (`study`).
"""
