"""Files written whole: a process killed at any instant (even by SIGKILL) leaves either the previous
version of a file or the new one, never half of it, and two processes writing the same file agree.

Each writer writes a temporary file beside the target, flushes it to disk and renames it into place
(a rename within one folder is atomic on POSIX and Windows). The files get the mode the user's umask
gives any new file (0644 usually), not the temporary file's 0600.
"""
import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from app.errors import DeepVisError


def write_atomic(path, write) -> Path:
    """Call ``write(binary file object)`` on a temporary file beside ``path``, then rename it over
    ``path`` (its folder is created); returns ``path``."""
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.chmod(temporary, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno is not None:   # a full disk, a read-only folder
            raise OSError(error.errno, error.strerror, str(path)) from None   # the file meant, not its temporary
        raise
    return path


def _umask() -> int:
    """The process's umask. NOTE: os.umask reads it only by setting it: set back at once."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(path, data: bytes) -> Path:
    """Raw bytes, written whole or not at all."""
    return write_atomic(path, lambda stream: stream.write(data))


def write_json_atomic(path, value, indent=None) -> Path:
    """``value`` as JSON (UTF-8), written whole or not at all."""
    return write_bytes_atomic(path, json.dumps(value, indent=indent, allow_nan=False).encode("utf-8"))


def write_npz_atomic(path, **arrays) -> Path:
    """Arrays as an uncompressed .npz (read back with ``read_npz``), written whole or not at all."""
    return write_atomic(path, lambda stream: np.savez(stream, **arrays))


def write_image_atomic(path, image: np.ndarray, params=()) -> Path:
    """An image (H x W x 3 uint8 BGR, or gray) encoded by the file's extension (.png, .jpg with
    ``params`` such as [cv2.IMWRITE_JPEG_QUALITY, 95]), written whole or not at all."""
    ok, data = cv2.imencode(Path(path).suffix, image, list(params))
    if not ok:
        raise DeepVisError(f"{path}: cannot encode a {image.shape} image as {Path(path).suffix}")
    return write_bytes_atomic(path, data.tobytes())


def read_npz(path) -> dict:
    """Every array of an .npz as a dict (pickled objects refused)."""
    with np.load(Path(path), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
