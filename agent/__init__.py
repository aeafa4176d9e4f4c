"""mobile-cctv unit agent: records, detects motion, cuts events and uploads them over 4G.

Flow: source -> motion + segments -> events -> outbox -> upload queue -> S3; status -> control room.
"""

__version__ = "0.1.0"
