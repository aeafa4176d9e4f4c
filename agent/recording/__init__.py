"""Recording: full frames -> H.264 MP4 segments on disk, their SQLite index and UTC times, retention.

Fed by the pipeline's capture path; agent.events reads the index to cut clips from closed segments.
"""
