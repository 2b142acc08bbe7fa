"""The mp4 recorder: exact frame counts and durations, and no half-written files."""

import os
from fractions import Fraction

import av
import numpy as np
import pytest

from neural_engine.errors import EngineError
from neural_engine.runtime.recorder import Mp4Recorder


def frames(count, width=64, height=48):
    """Flat frames whose grey level encodes their index (10, 20, 30, ...)."""
    return [np.full((height, width, 3), 10 * (i + 1) % 250, dtype=np.uint8) for i in range(count)]


def decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        duration = Fraction(stream.duration) * stream.time_base
        codec, pix_fmt = stream.codec_context.name, stream.codec_context.pix_fmt
    return decoded, duration, codec, pix_fmt


@pytest.mark.parametrize("fps, count", [(20, 30), (12.5, 7), (30, 1)])
def test_n_frames_at_fps_last_n_over_fps_seconds(tmp_path, fps, count):
    path = tmp_path / "run.mp4"
    with Mp4Recorder(path, fps=fps, size=(64, 48)) as recorder:
        for frame in frames(count):
            recorder.write(frame)
            assert not path.exists()  # nothing at the target until it is complete
    assert recorder.frames_written == count
    decoded, duration, codec, pix_fmt = decode(path)
    assert (codec, pix_fmt) == ("h264", "yuv420p")
    assert len(decoded) == count
    assert all(frame.shape == (48, 64, 3) for frame in decoded)
    assert duration == Fraction(count) / Fraction(fps)
    levels = [float(frame.mean()) for frame in decoded]
    assert np.allclose(levels, [float(f.mean()) for f in frames(count)], atol=3)
    assert os.listdir(tmp_path) == ["run.mp4"]


def test_odd_sizes_are_padded_to_even(tmp_path):
    path = tmp_path / "odd.mp4"
    with Mp4Recorder(path, fps=20, size=(33, 17)) as recorder:
        assert recorder.encoded_size == (34, 18)
        for frame in frames(3, width=33, height=17):
            recorder.write(frame)
    decoded, *_ = decode(path)
    assert [frame.shape for frame in decoded] == [(18, 34, 3)] * 3


def test_missing_folder_is_a_user_error_naming_the_path(tmp_path):
    path = tmp_path / "nowhere" / "run.mp4"
    with pytest.raises(EngineError, match="folder does not exist") as raised:
        Mp4Recorder(path, fps=20, size=(64, 48))
    assert str(path) in str(raised.value)
    assert os.listdir(tmp_path) == []


def test_a_folder_at_the_path_is_a_user_error(tmp_path):
    (tmp_path / "run.mp4").mkdir()
    with pytest.raises(EngineError, match="is a folder"):
        Mp4Recorder(tmp_path / "run.mp4", fps=20, size=(64, 48))
    assert os.listdir(tmp_path) == ["run.mp4"]


def test_an_exception_after_some_frames_leaves_a_playable_file(tmp_path):
    path = tmp_path / "crash.mp4"
    with pytest.raises(KeyError):
        with Mp4Recorder(path, fps=20, size=(64, 48)) as recorder:
            for frame in frames(5):
                recorder.write(frame)
            raise KeyError("the game crashed")
    decoded, duration, *_ = decode(path)
    assert len(decoded) == 5 and duration == Fraction(5, 20)
    assert os.listdir(tmp_path) == ["crash.mp4"]


def test_an_exception_before_any_frame_leaves_nothing(tmp_path):
    with pytest.raises(KeyError):
        with Mp4Recorder(tmp_path / "crash.mp4", fps=20, size=(64, 48)):
            raise KeyError("the game crashed")
    assert os.listdir(tmp_path) == []


def test_abort_and_empty_close_leave_nothing(tmp_path):
    recorder = Mp4Recorder(tmp_path / "a.mp4", fps=20, size=(64, 48))
    recorder.write(frames(1)[0])
    recorder.abort()
    assert Mp4Recorder(tmp_path / "b.mp4", fps=20, size=(64, 48)).close() is None
    assert os.listdir(tmp_path) == []


def test_wrong_frames_and_rates_are_refused(tmp_path):
    with pytest.raises(EngineError, match="frame rate"):
        Mp4Recorder(tmp_path / "run.mp4", fps=0, size=(64, 48))
    recorder = Mp4Recorder(tmp_path / "run.mp4", fps=20, size=(64, 48))
    with pytest.raises(ValueError):
        recorder.write(np.zeros((64, 48, 3), dtype=np.uint8))
    recorder.abort()
