"""Detection: small grey frames in, motion score and boxes out; zones and privacy masks.

Fed by the pipeline's analysis thread (and `cctv-agent detect`); its results feed agent.events.
"""
