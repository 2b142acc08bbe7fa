"""Recording frames to an H.264 mp4 file that is never seen half-written.

``Mp4Recorder`` encodes ``(h, w, 3)`` uint8 frames (top row first) with libx264 in
yuv420p through PyAV. It writes into a hidden temporary file beside the target and
renames it into place on ``close()``, so the target path holds either nothing or a
complete, playable file. Frame ``n`` is stamped at ``n / fps`` seconds, so N frames
last exactly ``N / fps`` seconds. yuv420p needs even sizes: an odd width or height is
padded by repeating the last column or row (``encoded_size`` says what was encoded).

As a context manager it finishes the file on a clean exit; on an exception it still
finishes the file if any frame was written (a recording up to a crash is worth
keeping), and otherwise leaves nothing behind.

The recorder knows nothing about where frames come from, nor about real time: it
stamps frames by count, whatever the wall clock did.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from neural_engine.errors import EngineError
from neural_engine.files import publish


class Mp4Recorder:
    """Encodes frames of ``size`` (width, height) at ``fps`` into the mp4 at ``path``.

    ``crf`` is x264's constant quality (0 lossless, 18 visually lossless, 23 default);
    ``preset`` trades encoding speed for file size.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        size: tuple[int, int],
        crf: int = 18,
        preset: str = "veryfast",
    ):
        self.path = Path(path)
        width, height = (int(n) for n in size)
        if fps <= 0:
            raise EngineError(f"frame rate must be positive, got {fps}", where=str(self.path))
        if width < 1 or height < 1:
            raise EngineError(
                f"frame size must be at least 1×1, got {width}×{height}", where=str(self.path)
            )
        _check_writable(self.path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.size = (width, height)
        self.encoded_size = (width + width % 2, height + height % 2)
        self.frames_written = 0
        self._time_base = 1 / self.fps
        padded_w, padded_h = self.encoded_size
        self._padded = np.zeros((padded_h, padded_w, 3), dtype=np.uint8)  # (H', W', 3), reused
        self._temporary = self._open(crf, preset)

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(h, w, 3)`` uint8 frame, top row first."""
        if self._container is None:
            raise RuntimeError("write() on a closed recorder")
        width, height = self.size
        if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"frame must be uint8 of shape {(height, width, 3)}, "
                f"got {frame.dtype} {frame.shape}"
            )
        if self.encoded_size != self.size:
            self._padded[:height, :width] = frame
            self._padded[height:, :width] = frame[-1:]
            self._padded[:, width:] = self._padded[:, width - 1 : width]
            frame = self._padded
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        picture.pts = self.frames_written
        picture.time_base = self._time_base
        try:
            for packet in self._stream.encode(picture):
                self._container.mux(packet)
        except (OSError, av.FFmpegError) as error:
            self.abort()
            raise EngineError(
                f"cannot write the recording: {error}", where=str(self.path)
            ) from None
        self.frames_written += 1

    def close(self) -> Path | None:
        """Finish the file and move it to ``path``; with no frames written, leave nothing.

        Returns the path written, or None if there was nothing to write. Closing twice
        does nothing the second time.
        """
        if self._container is None:
            return None
        if self.frames_written == 0:
            self.abort()
            return None
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            self._container = None
            publish(self._temporary, self.path)
        except (OSError, av.FFmpegError) as error:
            self.abort()
            raise EngineError(
                f"cannot finish the recording: {error}", where=str(self.path)
            ) from None
        return self.path

    def abort(self) -> None:
        """Stop without producing a file: the temporary file is removed."""
        if self._container is not None:
            container, self._container = self._container, None
            try:
                container.close()
            except (OSError, av.FFmpegError):
                pass  # the file is being thrown away; a failure to finish it changes nothing
        Path(self._temporary).unlink(missing_ok=True)

    def __enter__(self) -> Mp4Recorder:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None or self.frames_written > 0:
            self.close()
        else:
            self.abort()

    def _open(self, crf: int, preset: str) -> str:
        try:
            handle, temporary = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".part"
            )
        except OSError as error:
            raise EngineError(
                f"cannot create the recording: {error.strerror}", where=str(self.path)
            ) from None
        os.close(handle)
        self._container = None
        try:
            self._container = av.open(
                temporary, mode="w", format="mp4", options={"movflags": "faststart"}
            )
            self._stream = self._container.add_stream("libx264", rate=self.fps)
            self._stream.width, self._stream.height = self.encoded_size
            self._stream.pix_fmt = "yuv420p"
            self._stream.codec_context.time_base = self._time_base
            self._stream.options = {"crf": str(crf), "preset": preset}
        except (OSError, av.FFmpegError) as error:
            if self._container is not None:
                self._container.close()
            Path(temporary).unlink(missing_ok=True)
            raise EngineError(
                f"cannot create the recording: {error}", where=str(self.path)
            ) from None
        return temporary


def _check_writable(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise EngineError("cannot record: the output folder does not exist", where=str(path))
    if path.is_dir():
        raise EngineError("cannot record: the path is a folder, not a file", where=str(path))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise EngineError("cannot record: the output folder is not writable", where=str(path))
