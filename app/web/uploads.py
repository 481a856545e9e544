"""Images from the browser (dropped or picked files, camera frames): limits, decoding, and the one
temporary folder uploads are kept in.

Bytes are checked against a size limit, then decoded in memory by the toolbox's one image reader
(the pixel limit of image files, read from the header before decoding). An upload is written back as a PNG under a
name the server makes (upload-N.png): nothing a browser sends names a path.
"""
import itertools
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from app.errors import DeepVisError
from app.files import write_image_atomic
from app.net.preprocess import decode_image_noted


def decode(data: bytes, name: str, max_bytes: int) -> np.ndarray:
    """The image in ``data`` as H x W x 3 uint8 BGR; DeepVisError (one line naming ``name``) when it is
    over ``max_bytes``, over the pixel limit of image files (checked from its header before decoding)
    or no image."""
    if len(data) > max_bytes:
        raise DeepVisError(f"{name}: {len(data)} bytes, more than the limit of {max_bytes} "
                           "(settings: web_upload_max_bytes, web_frame_max_bytes)")
    return decode_image_noted(data, name)[0]


class UploadFolder:
    """A temporary folder for the uploads of one server run, removed by close()."""

    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="deepvis-uploads-"))
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def store(self, image: np.ndarray) -> Path:
        """Write ``image`` as the next upload-N.png; returns its path."""
        with self._lock:
            number = next(self._numbers)
        return write_image_atomic(self.path / f"upload-{number}.png", image)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
