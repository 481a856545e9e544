"""One browser tab: its own LiveSession (state, threads), driven by the socket's messages, and what it
sends back.

The tab's loop thread does what the window's loop does (app/ui/session.py), without HighGUI: it
carries out the keys and clicks that came in, takes one turn, and encodes the picture when it
changed. Outgoing, a tab holds one frame slot and a short queue of small messages. A frame is sent
only while fewer than FRAMES_IN_FLIGHT are unacknowledged (the browser says "shown" after drawing
each: two let the next frame travel while the last is drawn), and a picture is encoded only when
it can leave at once: the newest one, as soon as an acknowledgement comes. A slow browser gets fewer frames, never a queue, and no time goes into encoding pictures it
would never get. The status line's fps is the rate of frames the browser acknowledged.
"""
import json
import sys
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from app.errors import DeepVisError
from app.inputs.files import FileSequence
from app.ui import save_view
from app.ui.session import LiveSession
from app.web.browser_keys import key_code
from app.web.camera import BrowserCamera

FRAME, DOWNLOAD = b"\x01", b"\x02"   # first byte of a binary message: a picture to show / a PNG to save
FRAMES_IN_FLIGHT = 2               # frames sent and not yet acknowledged, at most
FPS_SECONDS = 2.0                   # the fps shown is the browser's rate over this many seconds
ACKNOWLEDGED_KEPT = 512             # acknowledgement times kept (a page that floods them cannot grow this)
MAX_MESSAGES = 32                   # small messages waiting to be sent (older errors give way)
NAME_CHARACTERS = 80                # of an uploaded file's name, as the status line shows it
ENDED = "q: the app ended in this tab (reload the page to start again)"


class WebTab:
    """The app for one WebSocket. ``notify()`` (any thread) wakes the socket's sender."""

    def __init__(self, net, settings, source, notify: Callable[[], None], atlas_link: str = ""):
        """atlas_link: where the server serves the atlas site, relative to the page ("" : it does not)."""
        self.live = LiveSession(net, settings, source, fps=self.received_rate)
        self.live.handlers.update(save_view=self._download, browser_camera=self._toggle_browser_camera)
        if atlas_link:
            self.live.handlers["open_atlas"] = self._open_atlas
        self._atlas_link = atlas_link
        s = self.live.app.settings
        self.settings = s
        self.camera = BrowserCamera(s.web_frame_max_bytes, s.input_camera_mirror)
        self._notify = notify
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._inbox = deque()          # ("key", code) / ("click", y, x) / ("upload", path, name)
        self._messages = deque()       # text or binary messages to send, in order
        self._frame = None             # the newest encoded picture not sent yet
        self._in_flight = 0            # frames sent and not yet acknowledged
        self._acknowledged = deque(maxlen=ACKNOWLEDGED_KEPT)   # times the browser acknowledged frames
        self._camera_shown = False
        self._ended = False
        self._newest = None            # the newest picture drawn
        self._unsent = False           # ... and it has not been encoded for sending yet
        self._thread = threading.Thread(target=self._run, name="web-tab", daemon=True)

    # --- from the socket (the event loop's thread) ---

    def start(self) -> "WebTab":
        self.live.start()
        self._thread.start()
        return self

    def close(self) -> None:
        """Ask the loop to end; it stops every thread of this tab as it ends (join() waits for that)."""
        self._closing.set()
        self._wake.set()

    def join(self, timeout: float = 2.0) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def ended(self) -> bool:
        """The app ended in this tab (q); its last message is queued."""
        return self._ended

    def press(self, browser_key) -> None:
        """A key from the browser (KeyboardEvent.key); DeepVisError for an unknown name or too many keys waiting."""
        self._put(("key", key_code(browser_key)))

    def click(self, x, y) -> None:
        """A click at picture pixel (x, y); DeepVisError when they are not whole numbers."""
        if not all(isinstance(value, int) and not isinstance(value, bool) for value in (x, y)):
            raise DeepVisError(f"click: x and y must be whole numbers of pixels, got {x!r}, {y!r}")
        self._put(("click", y, x))

    def upload(self, path: Path, name: str) -> None:
        """An uploaded image (already checked and stored) joins the file list and is shown."""
        shown = "".join(character for character in str(name) if character.isprintable())[:NAME_CHARACTERS]
        self._put(("upload", path, f"{shown or path.name} (uploaded)"))

    def camera_frame(self, data: bytes) -> None:
        """A frame of the browser's camera; it is acknowledged at once (the page sends the next one then)."""
        self.camera.offer(data)
        self._post({"type": "camera_ack"})

    def acknowledge(self) -> None:
        """The browser drew the last frame sent."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._acknowledged.append(time.monotonic())
        self._wake.set()   # the loop encodes the newest picture now

    def error(self, message: str) -> None:
        """Tell the browser what was wrong with what it sent."""
        self._post({"type": "error", "message": message})

    def outgoing(self) -> list:
        """The messages to send now: the waiting small ones, then the newest frame unless one is in flight."""
        with self._lock:
            messages = list(self._messages)
            self._messages.clear()
            if self._frame is not None and self._in_flight < FRAMES_IN_FLIGHT:
                messages.append(self._frame)
                self._frame = None
                self._in_flight += 1
        return messages

    def received_rate(self) -> float:
        """Frames the browser acknowledged per second over the last FPS_SECONDS."""
        now = time.monotonic()
        with self._lock:
            while self._acknowledged and now - self._acknowledged[0] > FPS_SECONDS:
                self._acknowledged.popleft()
            times = list(self._acknowledged)
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    # --- the loop thread ---

    def _run(self) -> None:
        try:
            while not self._closing.is_set() and not self.live.state.quit:
                self._wake.clear()   # before the work: a key that comes meanwhile ends the wait below at once
                self._carry_out_inbox()
                picture = self.live.step()
                if picture is not None and (self._newest is None or not np.array_equal(picture, self._newest)):
                    self._newest, self._unsent = picture, True
                if self._unsent and self._can_send():
                    self._publish(self._newest)
                self._follow_camera()
                self._wake.wait(self.settings.key_wait_ms / 1000)
        except Exception as error:  # noqa: BLE001 -- a bug ends this tab with a message, never silently
            traceback.print_exc(file=sys.stderr)
            self.error(f"the app stopped in this tab: {type(error).__name__}: {error}")
        finally:
            self.live.stop()
            if self.live.state.quit:
                with self._lock:
                    self._messages.append(json.dumps({"type": "ended", "message": ENDED}))
                    self._ended = True
                self._notify()

    def _put(self, item) -> None:
        with self._lock:
            if len(self._inbox) >= self.settings.web_max_pending_keys:
                raise DeepVisError(f"{len(self._inbox)} keys and clicks waiting already: this one is dropped "
                                   "(settings: web_max_pending_keys)")
            self._inbox.append(item)
        self._wake.set()

    def _carry_out_inbox(self) -> None:
        while True:
            with self._lock:
                if not self._inbox:
                    return
                item = self._inbox.popleft()
            if item[0] == "key":
                self.live.key(item[1])
            elif item[0] == "click":
                self.live.click(item[1], item[2])
            else:
                self._add_upload(item[1], item[2])

    def _download(self) -> None:
        """Save view in a browser: the picture as shown, as a PNG the browser downloads."""
        app, picture = self.live.app, self.live.shown
        if picture is None:
            app.message = "save view: nothing drawn yet"
            return
        name = save_view.file_name(app.info.model_name, app.info.names[app.state.layer], app.state.unit, time.time())
        _, png = cv2.imencode(".png", picture)
        self._post({"type": "download", "name": name})
        self._post(DOWNLOAD + png.tobytes())
        app.message = f"view downloaded as {name}"

    def _open_atlas(self) -> None:
        """Key A in a browser: the selected unit's atlas page, served by this server, in a new tab."""
        app = self.live.app
        page, why = app.atlas_page()
        if page is None:
            app.message = f"atlas: {why}"
            return
        self._post({"type": "open", "url": self._atlas_link + page})
        app.message = f"atlas: {page} opened in a new tab"

    def _toggle_browser_camera(self) -> None:
        live = self.live
        if live.inputs.source is self.camera:
            live.toggle_source(lambda: None)   # back to the source shown before (kept as the other one)
            return
        if live.other_source is not None and live.other_source is not self.camera:
            live.other_source.close()
        live.other_source = live.inputs.switch(self.camera)

    def _follow_camera(self) -> None:
        """Tell the page to start or stop its camera when the tab's input turns to it or away from it;
        pass on why a camera frame was dropped."""
        shown = self.live.inputs.source is self.camera
        if shown != self._camera_shown:
            self._camera_shown = shown
            self._post({"type": "camera", "on": shown})
        error = self.camera.take_error()
        if error:
            self.error(error)

    def _add_upload(self, path: Path, name: str) -> None:
        live = self.live
        if isinstance(live.inputs.source, FileSequence):
            live.inputs.call("add", path, name)
            return
        if not isinstance(live.other_source, FileSequence):   # a camera or a video shown: the uploads start a list
            if live.other_source is not None:
                live.other_source.close()
            live.other_source = FileSequence([], "uploaded images")
        live.other_source.add(path, name)
        live.toggle_source(lambda: None)

    def _can_send(self) -> bool:
        """Whether a frame could leave now: fewer than FRAMES_IN_FLIGHT unacknowledged and none waiting (only
        such a picture is encoded)."""
        with self._lock:
            return self._in_flight < FRAMES_IN_FLIGHT and self._frame is None

    def _publish(self, picture: np.ndarray) -> None:
        _, jpeg = cv2.imencode(".jpg", picture, (cv2.IMWRITE_JPEG_QUALITY, int(self.settings.web_jpeg_quality)))
        self._unsent = False
        with self._lock:
            self._frame = FRAME + jpeg.tobytes()
        self._notify()

    def _post(self, message) -> None:
        """Queue a small message (a dict, sent as JSON, or bytes); the oldest give way beyond MAX_MESSAGES."""
        with self._lock:
            self._messages.append(json.dumps(message) if isinstance(message, dict) else message)
            while len(self._messages) > MAX_MESSAGES:
                self._messages.popleft()
        self._notify()
