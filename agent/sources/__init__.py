"""Camera backends behind one FrameSource interface (picamera2, OpenCV, video file).

`open_source(cfg.camera, clock)` opens the configured one; `SupervisedSource` reopens it on stalls.
"""

from agent.sources.base import Frame, FrameSource, FrameTimeout, check_device, make_source, open_source

__all__ = ["Frame", "FrameSource", "FrameTimeout", "check_device", "make_source", "open_source"]
