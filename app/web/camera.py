"""The browser's webcam as an input source: JPEG frames the page sends over its WebSocket.

The socket hands each frame's bytes to offer() (newest wins: a frame not yet read is replaced);
read(), in the input thread, decodes the newest with the upload limits. A frame that cannot be
decoded is dropped and its one-line reason kept for the tab to send (take_error()).
"""
import threading
from typing import Optional

import cv2

from app.errors import DeepVisError
from app.inputs import Frame, InputSource
from app.web.uploads import decode

WAITING = "waiting for the browser's camera (allow it in the browser)"


class BrowserCamera(InputSource):
    """Frames from the page's getUserMedia camera, mirrored like a mirror when ``mirror``."""

    description = "browser camera"
    is_camera = True
    is_live = True

    def __init__(self, max_bytes: int, mirror: bool = True):
        super().__init__()
        self.max_bytes, self.mirror = max_bytes, mirror
        self._lock = threading.Lock()
        self._data: Optional[bytes] = None
        self._error = ""
        self._count = 0
        self._latest: Optional[Frame] = None

    def offer(self, data: bytes) -> None:
        """A frame's bytes from the socket (any thread)."""
        with self._lock:
            self._data = data

    def take_error(self) -> str:
        """Why the last bad frame was dropped ("" when none since the last call)."""
        with self._lock:
            error, self._error = self._error, ""
        return error

    def read(self) -> Optional[Frame]:
        with self._lock:
            data, self._data = (None, self._data) if self.frozen else (self._data, None)
        if data is not None:
            try:
                image = decode(data, "camera frame", self.max_bytes)
            except DeepVisError as error:
                with self._lock:
                    self._error = str(error)
            else:
                self._latest = Frame((cv2.flip(image, 1) if self.mirror else image,), self.description,
                                     index=self._count, count=0)
                self._count += 1
                self._unread = False
                return self._latest
        if self._unread:
            self._unread = False
            return self._latest or Frame((), self.description, count=0, message=WAITING)
        return None
