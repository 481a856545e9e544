"""What every offline job shares: a progress bar with an ETA, and files written whole.

A job killed at any instant (even by SIGKILL) must leave either the previous version of a file or
the new one, never half of it: each writer writes a temporary file beside the target, flushes it to
disk and renames it into place (a rename within one folder is atomic on POSIX and Windows). The
files get the mode the user's umask gives any new file (0644 usually), not the temporary file's 0600.
"""
import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from app.errors import DeepVisError


def progress_bar(total: int, desc: str, unit: str = "image", enabled: bool = True, initial: int = 0) -> tqdm:
    """A tqdm bar (count, rate and ETA) on stderr; ``initial`` counts work done before a resume."""
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=not enabled,
                dynamic_ncols=True, smoothing=0.1)


def estimate_line(count: int, seconds_each: float, unit: str = "unit") -> str:
    """"N units x ~S s/unit = ~T": what a long run will take, from its first part."""
    total = count * seconds_each
    if total < 120:
        spent = f"{total:.0f} s"
    elif total < 7200:
        spent = f"{total / 60:.0f} min"
    else:
        spent = f"{total / 3600:.1f} h"
    return f"{count} {unit}s x ~{seconds_each:.2g} s/{unit} = ~{spent}"


def _write_atomic(path, write) -> Path:
    """Call ``write(file object)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.chmod(temporary, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process's umask. NOTE: os.umask reads it only by setting it: set back at once."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json_atomic(path, value, indent=None) -> Path:
    """``value`` as JSON (UTF-8), written whole or not at all."""
    text = json.dumps(value, indent=indent, allow_nan=False)
    return _write_atomic(path, lambda stream: stream.write(text.encode("utf-8")))


def write_npz_atomic(path, **arrays) -> Path:
    """Arrays as an uncompressed .npz (read back with ``np.load(path)``; no pickles), written whole or not at all."""
    return _write_atomic(path, lambda stream: np.savez(stream, **arrays))


def write_bytes_atomic(path, data: bytes) -> Path:
    """Raw bytes, written whole or not at all."""
    return _write_atomic(path, lambda stream: stream.write(data))


def write_png_atomic(path, image: np.ndarray) -> Path:
    """An image (H x W x 3 uint8 BGR, or gray) as PNG, written whole or not at all."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise DeepVisError(f"{path}: cannot encode a {image.shape} image as PNG")
    return write_bytes_atomic(path, data.tobytes())


def read_json(path, default=None):
    """A JSON file, or ``default`` when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def read_npz(path) -> dict:
    """Every array of an .npz as a dict (pickled objects refused)."""
    with np.load(Path(path), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
