"""The live window: the main loop over keys, clicks, frames and snapshots, and its threads.

The loop never waits on the network: it submits the newest request to the compute thread and
draws whatever snapshot came back last. It ends on `q`, on closing the window, or on Ctrl-C, and
stops every thread before returning.
"""
import os
import sys
import time
from collections import deque

import cv2

from app.errors import DeepVisError
from app.inputs import open_source
from app.ui import keys, volume
from app.ui.app import REDRAW_SECONDS, App
from app.ui.compute import Computer, request_for
from app.ui.key_decoding import KeyDecoder, modifier_name
from app.ui.optimizer import OnDemand, OptimizeWorker
from app.ui.workers import ComputeWorker, Heartbeat, InputWorker, UnitImageLoader
from app.ui.x11_keys import ShiftReader, can_open_display

VOLUME_SECONDS = 0.1   # the 3-D view turns in steps at most this often
ATTACH_SECONDS = 10.0  # how long the Shift reader looks for the shown window (not found: no X11 window)
ATTACH_EVERY = 0.25    # seconds between looks (each walks the X server's window tree)
WINDOW_FLAGS = cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL   # no Qt context menu to block the loop


class Session:
    """One window and its threads."""

    def __init__(self, net, settings, source):
        self.app = App(net, settings)
        self.title = f"DeepVis Toolbox - {net.spec.name}"
        s = self.app.settings
        self.heartbeat = Heartbeat(s.heartbeat_timeout_seconds)
        self.inputs = InputWorker(source, self.heartbeat)
        self.compute = ComputeWorker(Computer(net, self.app.settings), self.heartbeat)
        self.images = UnitImageLoader(s.unit_image_cache_bytes, self.heartbeat)
        self.volumes = ComputeWorker(volume.render, self.heartbeat, name="volume")   # the 3-D view's pictures
        self.on_demand = OnDemand(OptimizeWorker(net, self.heartbeat), s, self.images.forget)   # key 2
        self.volume_image, self.volume_asked, self.volume_at = None, None, 0.0
        self.started = time.monotonic()
        self.other_source = None       # the camera or the files, whichever is not shown
        self.clicks = deque()
        self.snapshot, self.submitted = None, None
        self.shown = None              # the window's picture as drawn last
        self.frames_drawn = 0          # pictures shown so far: it rises while any worker is busy
        self.keys = KeyReading(self.title)

    def run(self) -> None:
        cv2.namedWindow(self.title, WINDOW_FLAGS)
        cv2.setMouseCallback(self.title, self._on_mouse)
        workers = (self.inputs, self.compute, self.images, self.volumes, self.on_demand.worker)
        for worker in workers:
            worker.start()
        try:
            self._loop()
        finally:
            for worker in workers:
                worker.stop()
            if self.other_source is not None:
                self.other_source.close()
            self.keys.close()
            _close_window(self.title)

    def _loop(self) -> None:
        drawn_key, drawn_at, view = None, 0.0, None
        while not self.app.state.quit:
            self.heartbeat.beat()
            frame = self.inputs.latest()
            self._submit(frame)
            self._collect()
            self._turn_volume()
            optimizing = self._follow_optimization()
            key = (self.app.state, frame, self.snapshot, self.app.message, id(self.volume_image),
                   self.inputs.source.frozen, id(optimizing))
            if key != drawn_key or time.monotonic() - drawn_at > REDRAW_SECONDS:
                view = self.app.view(frame, self.snapshot, self._fps(), self.images.get, self.volume_image,
                                     self.inputs.source.frozen, optimizing)
                self.shown = self.app.render(view)
                cv2.imshow(self.title, self.shown)
                self.frames_drawn += 1
                drawn_key, drawn_at = key, time.monotonic()
            code = self.keys.decode(cv2.waitKeyEx(self.app.settings.key_wait_ms))
            self._act(keys.action_for(code, typing=self.app.state.class_entry is not None))
            while self.clicks and view is not None:
                self._act(self.app.click(view, *self.clicks.popleft()))
            if not _window_open(self.title):
                break

    def _submit(self, frame) -> None:
        if frame is None or frame.waiting:   # a camera without a frame yet: nothing to run the net on
            return
        request = request_for(self.app.state, frame)
        if request != self.submitted:
            self.compute.submit(request)
            self.submitted = request

    def _collect(self) -> None:
        done = self.compute.latest()
        if done is None:
            return
        if done.result is not None:
            if done.result is not self.snapshot:   # a new result: older messages (export paths) go
                self.app.message = ""
            self.snapshot = done.result
        elif done.error:
            self.app.message = done.error

    def _turn_volume(self) -> None:
        """Keep the 3-D view turning: the next angle once the last picture is done, at most
        every VOLUME_SECONDS (the worker renders; the loop never waits for it)."""
        job = self.app.volume_job(self.snapshot, time.monotonic() - self.started)
        if job is None:
            self.volume_image, self.volume_asked = None, None
            return
        done = self.volumes.latest()
        finished = done is not None and done.job is self.volume_asked
        if finished and done.result is not None:
            self.volume_image = done.result
        if (self.volume_asked is None or finished) and time.monotonic() - self.volume_at >= VOLUME_SECONDS:
            self.volumes.submit(job)
            self.volume_asked, self.volume_at = job, time.monotonic()

    def _follow_optimization(self):
        """Cancel an on-demand optimization of a unit no longer shown, start one on a resting unit
        (optimize_on_select); returns the shown unit's Progress (None: none)."""
        job, _ = self.app.optimize_job()
        message = self.on_demand.follow(job, time.monotonic())
        if message:
            self.app.message = message
        return self.on_demand.shown(job)

    def _fps(self) -> float:
        seconds = self.compute.seconds_per_job
        return 1.0 / seconds if seconds else 0.0

    def _on_mouse(self, event, x, y, flags, param) -> None:
        if event == cv2.EVENT_LBUTTONDOWN:
            self.clicks.append((y, x))

    def _act(self, action) -> None:
        if action is None:
            return
        if action == "export_volume":
            self.app.export_volume(self.snapshot)
        elif action == "save_view":
            self.app.save_view(self.shown)
        elif action == "optimize_unit":
            self.app.message = self.on_demand.start(*self.app.optimize_job())
        elif action == "open_atlas":
            self.app.open_atlas()
        elif action == "freeze_camera":
            if self.inputs.source.is_live:
                self.inputs.toggle_freeze()
            else:
                self.app.message = "f: files stay still (it pauses a camera or a video)"
        elif action == "toggle_camera":
            self._toggle_camera()
        elif action in ("next_image", "previous_image"):
            if self.inputs.source.is_camera:
                self._toggle_camera()
            getattr(self.inputs, "next" if action == "next_image" else "previous")()
        else:
            self.app.act(action, self.snapshot)

    def _toggle_camera(self) -> None:
        """Switch between the camera and the files; the camera is opened on first use."""
        if self.other_source is None:
            try:
                self.other_source = open_source("camera" if not self.inputs.source.is_camera else None,
                                                self.app.settings)
            except DeepVisError as error:
                self.app.message = str(error)
                return
        self.other_source = self.inputs.switch(self.other_source)


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
    instead = "render the window to a PNG instead: run_toolbox.py --screenshot OUT.png [--keys KEYS]"
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
