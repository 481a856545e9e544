"""Files written whole (app.files) get the mode of any file the user makes (the umask), not 0600:
the offline jobs' outputs, the sample photos and the converted-model cache alike."""
import os
import stat

import numpy as np
import pytest

from app.files import write_bytes_atomic, write_image_atomic, write_json_atomic, write_npz_atomic
from app.inputs.samples import SAMPLES, default_input_dir


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        paths = [write_json_atomic(tmp_path / "a.json", {"x": 1}), write_npz_atomic(tmp_path / "b.npz", x=np.ones(2)),
                 write_image_atomic(tmp_path / "c.png", np.zeros((4, 4, 3), np.uint8)),
                 write_bytes_atomic(tmp_path / "d.onnx", b"model")]
    finally:
        os.umask(previous)
    assert [stat.S_IMODE(path.stat().st_mode) for path in paths] == [mode] * 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.npz", "c.png", "d.onnx"]   # no temporary left


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = write_json_atomic(tmp_path / "a.json", {"x": 1})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"x": float("nan")})
    assert path.read_text() == '{"x": 1}' and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_sample_photos_are_written_whole_with_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        folder = default_input_dir(tmp_path)
    finally:
        os.umask(previous)
    assert sorted(p.name for p in folder.iterdir()) == sorted(SAMPLES)
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o644}
