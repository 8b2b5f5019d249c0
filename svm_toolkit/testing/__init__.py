"""Test helpers users need too: synthetic media and a loopback HTTP server."""

from svm_toolkit.testing.media import MediaSpec, ffmpeg_args, make_media
from svm_toolkit.testing.server import BOT_CHECK_TEXT, LoopbackServer, Route

__all__ = ["BOT_CHECK_TEXT", "LoopbackServer", "MediaSpec", "Route", "ffmpeg_args", "make_media"]
