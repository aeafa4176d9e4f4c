"""Working copies: a single playable MP4 joined from a range's native segments (stream copy, no
re-encode), named so it can never be taken for the master exhibit.

Called by the package builder; a failure here costs the package its working copy, never its masters.
"""

from __future__ import annotations

from pathlib import Path


def working_name(exhibit_ref: str, event_id: str) -> str:
    return f"{exhibit_ref}_WORKING-COPY_{event_id}_joined.mp4"


def join_segments(segments: list[Path], out: Path) -> int:
    """Concatenate MP4 segments' video packets into `out` (timestamps made continuous); packets written."""
    import av

    written = 0
    offset = 0
    last_end = 0
    with av.open(str(out), "w", format="mp4") as dst:
        stream_out = None
        for path in segments:
            with av.open(str(path)) as src:
                stream_in = src.streams.video[0]
                if stream_out is None:
                    stream_out = dst.add_stream_from_template(stream_in)
                first: int | None = None
                for packet in src.demux(stream_in):
                    if packet.dts is None or packet.pts is None:
                        continue
                    if first is None:
                        first = packet.dts
                        offset = last_end - first
                    duration = packet.duration or 0
                    packet.dts += offset
                    packet.pts += offset
                    last_end = max(last_end, packet.dts + max(duration, 1))
                    packet.stream = stream_out
                    dst.mux(packet)
                    written += 1
    return written
