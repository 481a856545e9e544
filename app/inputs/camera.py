"""A webcam read in its own thread, so a slow camera never slows the app.

A missing or lost camera is not an error: the source yields a frame without an image whose
message says so (the app shows "waiting for camera" and runs no net on it), and tries again after
a wait that doubles with each failure up to a ceiling. OpenCV's own log lines about the missing
device are silenced while the camera is opened (they would repeat at every try).
"""
import threading
import time
from typing import Optional

import cv2
import numpy as np

from app.errors import DeepVisError
from app.inputs.source import Frame, InputSource
from app.net.image_file import as_bgr_uint8, quiet_opencv

_JOIN_SECONDS = 0.5


def stretch_contrast(image: np.ndarray) -> np.ndarray:
    """Map the 1st..99th percentile of the pixel values onto 0..255 (dim webcams look flat)."""
    low, high = np.percentile(image[::4, ::4], (1, 99))
    if high - low < 1:
        return image
    table = np.clip((np.arange(256) - low) * (255.0 / (high - low)), 0, 255).astype(np.uint8)
    return cv2.LUT(image, table)


class CameraSource(InputSource):
    """Camera ``index`` (as cv2.VideoCapture numbers them), mirrored like a mirror by default."""

    is_camera = True
    is_live = True

    def __init__(self, index: int = 0, mirror: bool = True, contrast_stretch: bool = False,
                 fps: float = 20.0, retry_seconds: float = 1.0, max_retry_seconds: float = 30.0):
        super().__init__()
        self.index, self.mirror, self.contrast_stretch = index, mirror, contrast_stretch
        self.description = f"camera {index}"
        self._interval = 1.0 / fps
        self._retry_seconds, self._max_retry_seconds = retry_seconds, max_retry_seconds
        self._lock = threading.Lock()
        self._latest: Optional[Frame] = None
        self._serial, self._serial_read = 0, 0
        self._frames_captured = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._capture_loop, name=f"camera-{index}", daemon=True)
        self._thread.start()

    def read(self) -> Optional[Frame]:
        with self._lock:
            fresh = self._serial != self._serial_read and not self.frozen
            if self._latest is None or not (fresh or self._unread):
                return None
            self._serial_read, self._unread = self._serial, False
            return self._latest

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not threading.current_thread():
            self._thread.join(_JOIN_SECONDS)

    def retry_wait(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed tries in a row: doubling, up to the ceiling."""
        return min(self._retry_seconds * 2 ** max(0, failures - 1), self._max_retry_seconds)

    def _capture_loop(self) -> None:
        capture, failures = None, 0
        while not self._stopping.is_set():
            started = time.monotonic()
            if capture is None:
                capture = self._open()
            problem = self._capture_one(capture)
            if problem:
                if capture is not None:
                    capture.release()
                    capture = None
                failures += 1
                wait = self.retry_wait(failures)
                self._publish_waiting(f"waiting for {problem}, next try in {wait:.0f} s")
                self._stopping.wait(wait)
            else:
                failures = 0
                self._stopping.wait(max(0.0, self._interval - (time.monotonic() - started)))
        if capture is not None:
            capture.release()

    def _capture_one(self, capture) -> str:
        """Read and publish one frame; returns what went wrong, or ""."""
        if capture is None:
            return f"{self.description}: not found"
        ok, image = _read(capture)
        if not ok:
            return f"{self.description}: lost"
        try:
            self._publish((self._prepare(image),), "")
        except DeepVisError as error:
            return str(error)
        return ""

    def _open(self):
        try:
            with quiet_opencv():
                capture = cv2.VideoCapture(self.index)
        except cv2.error:
            return None
        if capture.isOpened():
            return capture
        capture.release()
        return None

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        image = as_bgr_uint8(image, self.description)
        if self.mirror:
            image = cv2.flip(image, 1)
        return stretch_contrast(image) if self.contrast_stretch else image

    def _publish_waiting(self, message: str) -> None:
        """A frame without an image: the app shows ``message`` and runs no net until a frame comes."""
        self._publish((), message)

    def _publish(self, images: tuple, message: str) -> None:
        frame = Frame(images, self.description, None, self._frames_captured, 0, message)
        with self._lock:
            self._latest = frame
            self._serial += 1
            self._frames_captured += 1


def _read(capture):
    """capture.read(), treating a driver exception or an empty image as a lost camera."""
    try:
        ok, image = capture.read()
    except cv2.error:
        return False, None
    return bool(ok) and image is not None and image.size > 0, image
