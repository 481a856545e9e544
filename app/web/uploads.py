"""Images from the browser (dropped or picked files, camera frames): limits, decoding, and the one
temporary folder uploads are kept in.

Bytes are checked against a size limit, the pixel count is read from the image's header before
anything is decoded, and the image is decoded in memory. An upload is written back as a PNG under a
name the server makes (upload-N.png): nothing a browser sends names a path.
"""
import io
import itertools
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from app.errors import DeepVisError
from app.files import write_image_atomic
from app.net.preprocess import decode_image_noted


def decode(data: bytes, name: str, max_bytes: int, max_pixels: int) -> np.ndarray:
    """The image in ``data`` as H x W x 3 uint8 BGR; DeepVisError (one line naming ``name``) when it is
    too large, has too many pixels or is no image."""
    if len(data) > max_bytes:
        raise DeepVisError(f"{name}: {len(data)} bytes, more than the limit of {max_bytes} "
                           "(settings: web_upload_max_bytes, web_frame_max_bytes)")
    try:
        with Image.open(io.BytesIO(data)) as header:   # reads the header only
            width, height = header.size
    except Image.DecompressionBombError:   # Pillow's own bound, far above any sane limit
        raise DeepVisError(f"{name}: more pixels than the limit of {max_pixels} (settings: web_max_image_pixels)") \
            from None
    except Exception:  # noqa: BLE001 -- Pillow raises many kinds on bytes that are no image it knows
        width = height = None   # OpenCV may still know the format; it decides below
    if width is not None and width * height > max_pixels:
        raise DeepVisError(f"{name}: {width} x {height} pixels, more than the limit of {max_pixels} "
                           "(settings: web_max_image_pixels)")
    image, _ = decode_image_noted(data, name)
    if image.shape[0] * image.shape[1] > max_pixels:
        raise DeepVisError(f"{name}: {image.shape[1]} x {image.shape[0]} pixels, more than the limit of "
                           f"{max_pixels} (settings: web_max_image_pixels)")
    return image


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
