"""The whole system on one machine: `make demo` (interactive) and `make demo-check` (CI proof).

A supervisor starts S3 (moto), the control room and three simulated units, each on its own 4G-like link.
"""
