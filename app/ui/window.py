"""The live window: HighGUI's keys, clicks and picture around the shared loop (app/ui/session.py).

It ends on `q`, on closing the window, or on Ctrl-C, and stops every thread before returning.
"""
import os
import sys
import time
from collections import deque

import cv2

from app.errors import DeepVisError
from app.ui import keys
from app.ui.key_decoding import KeyDecoder, modifier_name
from app.ui.session import LiveSession
from app.ui.x11_keys import ShiftReader, can_open_display

ATTACH_SECONDS = 10.0  # how long the Shift reader looks for the shown window (not found: no X11 window)
ATTACH_EVERY = 0.25    # seconds between looks (each walks the X server's window tree)
WINDOW_FLAGS = cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL   # no Qt context menu to block the loop


class Session:
    """One window showing a LiveSession's pictures, with HighGUI's keys and mouse."""

    def __init__(self, net, settings, source):
        self.live = LiveSession(net, settings, source)
        self.title = f"DeepVis Toolbox - {net.spec.name}"
        self.clicks = deque()
        self.keys = KeyReading(self.title)

    def run(self) -> None:
        cv2.namedWindow(self.title, WINDOW_FLAGS)
        cv2.setMouseCallback(self.title, self._on_mouse)
        self.live.start()
        try:
            self._loop()
        finally:
            self.live.stop()
            self.keys.close()
            _close_window(self.title)

    def _loop(self) -> None:
        live = self.live
        while not live.state.quit:
            picture = live.step()
            if picture is not None:
                cv2.imshow(self.title, picture)
            live.key(self.keys.decode(cv2.waitKeyEx(live.app.settings.key_wait_ms)))
            while self.clicks:
                live.click(*self.clicks.popleft())
            if not _window_open(self.title):
                break

    def _on_mouse(self, event, x, y, flags, param) -> None:
        if event == cv2.EVENT_LBUTTONDOWN:
            self.clicks.append((y, x))


class KeyReading:
    """The window's keys as the user meant them: raw codes decoded with Shift (app/ui/key_decoding.py),
    asking the X server about Shift where there is one (app/ui/x11_keys.py)."""

    def __init__(self, title: str):
        self.reader = ShiftReader.open(title)
        self.decoder = KeyDecoder(self.reader.shift_of if self.reader else None, known=keys.CODE_MAP)
        self.started, self.looked = time.monotonic(), 0.0

    def decode(self, code: int):
        """The code of the key meant (None: no key, or a modifier alone)."""
        now = time.monotonic()
        if self.reader is not None and not self.reader.attached and now - self.started < ATTACH_SECONDS \
                and now - self.looked >= ATTACH_EVERY:
            self.looked = now
            self.reader.attach()   # the window exists once it has been shown
        return self.decoder.decode(code)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def _window_open(title: str) -> bool:
    """Whether the window is still shown (False once the user closed it)."""
    try:
        return cv2.getWindowProperty(title, cv2.WND_PROP_VISIBLE) >= 1
    except cv2.error:   # NOTE: OpenCV's Qt backend raises once its last window is gone
        return False


def _close_window(title: str) -> None:
    """Destroy the window unless the user already closed it."""
    if _window_open(title):
        cv2.destroyWindow(title)
        cv2.waitKey(1)


def check_display() -> None:
    """Raise DeepVisError, before any window is made, where none can open: Linux without a display
    (SSH without -X, Docker). Qt would abort the process with no hint instead."""
    if sys.platform in ("win32", "darwin") or os.environ.get("QT_QPA_PLATFORM", "xcb").split(":")[0] not in (
            "xcb", "wayland"):   # another Qt platform (offscreen, vnc) needs no display
        return
    instead = ("serve it to a browser instead: run_toolbox.py --web (README: Remote machines), or render it "
               "to a PNG: run_toolbox.py --screenshot OUT.png [--keys KEYS]")
    display = os.environ.get("DISPLAY")
    qt = "QT" in next((line for line in cv2.getBuildInformation().splitlines() if "GUI:" in line), "")
    if not display and (qt or not os.environ.get("WAYLAND_DISPLAY")):   # OpenCV's Qt speaks X11 only
        raise DeepVisError(f"no display to open the window on (DISPLAY is not set); {instead}")
    if display and can_open_display(display) is False:
        raise DeepVisError(f"cannot open the display DISPLAY={display}; {instead}")


def run_window(net, settings, source) -> None:
    """Open the window on ``source`` and run until `q` or the window is closed."""
    Session(net, settings, source).run()


def test_keys() -> None:
    """Calibration: print the code and the meaning of each key pressed in a small window (q quits)."""
    title = "DeepVis key test - press keys, q quits"
    cv2.namedWindow(title, WINDOW_FLAGS)
    image = keys_test_image()
    print("Press keys in the window; q quits. Each line: the code OpenCV gives, the key, the action.")
    reading = KeyReading(title)
    while True:
        cv2.imshow(title, image)
        code = cv2.waitKeyEx(100)
        decoded = reading.decode(code)
        if code != -1:
            print(calibration_line(code, decoded), flush=True)
        if decoded == ord("q") or not _window_open(title):
            break
    reading.close()
    _close_window(title)


def calibration_line(code: int, decoded) -> str:
    """One --test-keys line: the raw code, then what the app makes of it (Shift applied)."""
    if decoded is None:
        return f"code {code} (0x{code:x}): {modifier_name(code) or 'nothing'}"
    if decoded == code:
        return keys.describe_code(code)
    return f"code {code} (0x{code:x}) read as {keys.describe_code(decoded)}"


def keys_test_image():
    import numpy as np

    from app.ui import draw

    image = np.full((120, 520, 3), 40, np.uint8)
    draw.text(image, "Press keys: codes print in the terminal.", (10, 50), 0.6)
    draw.text(image, "q quits.", (10, 85), 0.6)
    return image
