"""Files written whole by the offline jobs get the mode of any file the user makes (the umask), not 0600."""
import os
import stat

import numpy as np
import pytest

from app.offline.progress import write_json_atomic, write_npz_atomic, write_png_atomic


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        paths = [write_json_atomic(tmp_path / "a.json", {"x": 1}), write_npz_atomic(tmp_path / "b.npz", x=np.ones(2)),
                 write_png_atomic(tmp_path / "c.png", np.zeros((4, 4, 3), np.uint8))]
    finally:
        os.umask(previous)
    assert [stat.S_IMODE(path.stat().st_mode) for path in paths] == [mode] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.npz", "c.png"]   # no temporary file left
