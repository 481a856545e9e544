"""The one image file reader of the toolbox: limits checked before decoding, one line per problem.

Every image a user names (classify, the app's inputs, the offline jobs, per-unit images) is read
here. Before anything is decoded the file size is checked against ``image_max_file_bytes`` and the
pixel count its header claims against ``image_max_pixels`` (settings.py), so a small file claiming
40000 x 40000 pixels is refused without allocating them. Conversions, all to H x W x 3 uint8 BGR:

- gray, gray + alpha, RGBA: gray is repeated in the three channels, alpha is dropped;
- 16-bit and float images: scaled to 8 bits (a note says so);
- CMYK JPEG: converted to BGR by the JPEG decoder;
- EXIF orientation: applied, so the picture stands as a viewer shows it;
- animated GIF / APNG / WebP and multi-page TIFF: the first frame (a note says so).

Formats whose header Pillow cannot read (OpenEXR, Radiance HDR, ...) are decoded by OpenCV, whose
own pixel limit applies, and checked against ``image_max_pixels`` after decoding.
"""
import contextlib
import io
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from app.errors import DeepVisError

_EXIF_ORIENTATION = 0x0112
# signatures of formats OpenCV reads and Pillow does not: OpenEXR, Radiance HDR, JPEG 2000 (raw, boxed)
_OPENCV_ONLY = (b"v/1\x01", b"#?RADIANCE", b"#?RGBE", b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP  ")
# EXIF orientation -> how to stand the stored pixels up (numpy ops on H x W x C)
_ORIENT = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


@dataclass(frozen=True)
class ImageLimits:
    """What an image file may be: its size on disk and the pixels its header claims."""

    max_pixels: int
    max_file_bytes: int


_limits = None


def use_settings(settings) -> None:
    """Read images under these settings' limits from now on (entry points call this once)."""
    global _limits
    for name in ("image_max_pixels", "image_max_file_bytes"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DeepVisError(f"settings: {name} = {value!r} is not a positive whole number")
    _limits = ImageLimits(settings.image_max_pixels, settings.image_max_file_bytes)


def limits() -> ImageLimits:
    """The limits in force: those given to use_settings, else settings.py's and settings_local.py's."""
    if _limits is None:
        from app.settings import load_settings

        use_settings(load_settings())
    return _limits


class _QuietOpenCV:
    """OpenCV's log level is one for the process: the first thread in a quiet block saves it and
    silences OpenCV, the last one out restores it; the blocks themselves run side by side."""

    def __init__(self):
        self._lock, self._inside, self._saved = threading.Lock(), 0, None

    @contextlib.contextmanager
    def __call__(self):
        with self._lock:
            if not self._inside:
                self._saved = cv2.utils.logging.getLogLevel()
                cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
            self._inside += 1
        try:
            yield
        finally:
            with self._lock:
                self._inside -= 1
                if not self._inside:
                    cv2.utils.logging.setLogLevel(self._saved)


quiet_opencv = _QuietOpenCV()   # ``with quiet_opencv():`` OpenCV's log silenced for the block


def as_bgr_uint8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Any decoded image (gray, BGRA, 16-bit, float in [0,1]) as H x W x 3 uint8 BGR."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.size == 0:
        raise DeepVisError(f"{name}: not an image (array of shape {image.shape})")
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype.kind == "f":
        image = (np.clip(np.nan_to_num(image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 2:   # gray + alpha
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def read_image(path, name: str = None) -> np.ndarray:
    """Read an image file as H x W x 3 uint8 BGR; one DeepVisError line naming ``name`` (default:
    the path) when it is missing, unreadable, over the limits or cannot be decoded."""
    return read_image_noted(path, name)[0]


def read_image_noted(path, name: str = None) -> tuple:
    """(``read_image``'s image, a note on any conversion, e.g. from 16 bits, or "")."""
    name = str(path) if name is None else name
    return decode_image_noted(_read_bytes(Path(path), name), name)


def decode_image_noted(data, name: str) -> tuple:
    """``read_image_noted`` for an image file's bytes held in memory (an upload, a camera frame):
    the same pixel limit, conversions and messages."""
    data = bytes(data)
    header = _header(data, name, limits())
    if header is None and not data.startswith(_OPENCV_ONLY):
        # NOTE: not handed to OpenCV, whose decoders print their own warnings on damaged data
        raise DeepVisError(f"{name}: cannot decode (not an image file, or a damaged one)")
    try:
        with quiet_opencv():   # its codecs' warnings (a TIFF's looping pages...): our line says what matters
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:   # some codecs throw on damaged files instead of returning None
        decoded = None
    if decoded is None or decoded.size == 0:
        raise DeepVisError(f"{name}: cannot decode (damaged or truncated)")
    _check_pixels(decoded.shape[1], decoded.shape[0], name, limits())
    notes = []
    if decoded.dtype != np.uint8:
        notes.append(f"converted {name} from {decoded.dtype.itemsize * 8}-bit to 8-bit")
    if header and header["frames"]:
        notes.append(f"{name}: first frame shown ({header['format']} with several frames)")
    image = as_bgr_uint8(decoded, name)
    if header and header["orientation"] in _ORIENT:
        image = np.ascontiguousarray(_ORIENT[header["orientation"]](image))
    return image, "; ".join(notes)


def check_file_size(size: int, name: str) -> None:
    """An image file of ``size`` bytes is refused, before it is read, when empty or over the limit."""
    if size == 0:
        raise DeepVisError(f"{name}: empty file (0 bytes)")
    if size > limits().max_file_bytes:
        raise DeepVisError(f"{name}: {size} bytes, more than image_max_file_bytes = "
                           f"{limits().max_file_bytes} (settings.py)")


def _read_bytes(path: Path, name: str) -> bytes:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise DeepVisError(f"{name}: not a file")
        check_file_size(size, name)
        return path.read_bytes()
    except FileNotFoundError:
        raise DeepVisError(f"{name}: no such image file") from None
    except ValueError:   # a NUL byte in the name
        raise DeepVisError(f"{name!r}: not a file name (it holds a NUL byte)") from None
    except OSError as error:
        raise DeepVisError(f"{name}: cannot read ({error.strerror or error})") from None


def _header(data: bytes, name: str, bounds: ImageLimits):
    """What the header says (size checked against the limits), or None for formats Pillow does not know."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # Pillow's own bomb warning: our limit is checked below
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                _check_pixels(width, height, name, bounds)
                frames = bool(getattr(image, "is_animated", False))
                orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
                return dict(format=image.format, frames=frames, orientation=orientation)
    except Image.DecompressionBombError:
        raise DeepVisError(f"{name}: its header claims more than {2 * Image.MAX_IMAGE_PIXELS} pixels, "
                           f"over image_max_pixels = {bounds.max_pixels} (settings.py)") from None
    except UnidentifiedImageError:
        return None
    except DeepVisError:
        raise
    except Exception as error:   # a damaged header fails in Pillow's parsers in many ways
        raise DeepVisError(f"{name}: cannot decode (damaged or truncated header: {type(error).__name__})") from None


def _check_pixels(width: int, height: int, name: str, bounds: ImageLimits) -> None:
    if width <= 0 or height <= 0:
        raise DeepVisError(f"{name}: zero-size image ({width} x {height})")
    if width * height > bounds.max_pixels:
        raise DeepVisError(f"{name}: {width} x {height} pixels, more than image_max_pixels = "
                           f"{bounds.max_pixels} (settings.py)")
