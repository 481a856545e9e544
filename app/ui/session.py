"""The live app without a display: its threads and one turn of its loop, shared by the window and the browser.

    session = LiveSession(net, settings, source).start()
    while not session.state.quit:
        picture = session.step()        # the new picture when something changed, else None
        ...show picture, read keys and clicks...
        session.key(code); session.click(y, x)
    session.stop()

One turn never waits on the network: it submits the newest request to the compute thread and
draws whatever snapshot came back last. The window (app/ui/window.py) shows the pictures with
HighGUI; a browser tab (app/web/tab.py) sends them over a WebSocket.
"""
import time
from typing import Callable, Optional

import numpy as np

from app.errors import DeepVisError
from app.inputs import open_source
from app.ui import keys, volume
from app.ui.app import REDRAW_SECONDS, App, unreadable_picture
from app.ui.compute import Computer, request_for
from app.ui.optimizer import OnDemand, OptimizeWorker
from app.ui.workers import ComputeWorker, Heartbeat, InputWorker, UnitImageLoader

VOLUME_SECONDS = 0.1   # the 3-D view turns in steps at most this often


class LiveSession:
    """One app state, its input, compute, unit-image, 3-D view and optimization threads, and its picture.

    ``fps()`` gives the status line's frames per second (default: the compute thread's rate).
    """

    def __init__(self, net, settings, source, fps: Optional[Callable[[], float]] = None):
        self.app = App(net, settings)
        s = self.app.settings
        self.heartbeat = Heartbeat(s.heartbeat_timeout_seconds)
        self.inputs = InputWorker(source, self.heartbeat)
        self.compute = ComputeWorker(Computer(net, self.app.settings), self.heartbeat)
        self.images = UnitImageLoader(s.unit_image_cache_bytes, self.heartbeat)
        self.volumes = ComputeWorker(volume.render, self.heartbeat, name="volume")   # the 3-D view's pictures
        self.on_demand = OnDemand(OptimizeWorker(net, self.heartbeat), s, self.images.forget)   # key 2
        self.fps = fps or self.compute_rate
        self.handlers = {}             # action -> function: what a display does its own way (the browser's save view)
        self.volume_image, self.volume_asked, self.volume_at = None, None, 0.0
        self.started = time.monotonic()
        self.other_source = None       # the camera or the files, whichever is not shown
        self.snapshot, self.submitted = None, None
        self.view = None               # what was drawn last (clicks hit its panes)
        self.shown = None              # the picture as drawn last
        self.frames_drawn = 0          # pictures drawn so far: it rises while any worker is busy
        self._drawn_key, self._drawn_at = None, 0.0

    @property
    def workers(self) -> tuple:
        return self.inputs, self.compute, self.images, self.volumes, self.on_demand.worker

    @property
    def state(self):
        return self.app.state

    def start(self) -> "LiveSession":
        for worker in self.workers:
            worker.start()
        return self

    def stop(self) -> None:
        """Stop every thread and close the sources (the one shown and the other)."""
        for worker in self.workers:
            worker.stop()
        if self.other_source is not None:
            self.other_source.close()
            self.other_source = None

    def step(self) -> Optional[np.ndarray]:
        """One turn of the loop: the new picture when anything shown changed (or REDRAW_SECONDS passed),
        else None."""
        self.heartbeat.beat()
        frame = self.inputs.latest()
        self._submit(frame)
        self._collect()
        self._turn_volume()
        optimizing = self._follow_optimization()
        key = (self.app.state, frame, self.snapshot, self.app.message, id(self.volume_image),
               self.inputs.source.frozen, id(optimizing))
        if key == self._drawn_key and time.monotonic() - self._drawn_at <= REDRAW_SECONDS:
            return None
        self.view = self.app.view(frame, self.snapshot, self.fps(), self._unit_image, self.volume_image,
                                  self.inputs.source.frozen, optimizing)
        self.shown = self.app.render(self.view)
        self.frames_drawn += 1
        self._drawn_key, self._drawn_at = key, time.monotonic()
        return self.shown

    def key(self, code) -> None:
        """Carry out the action of key ``code`` (a key table code; None: no key)."""
        self.act(keys.action_for(code, typing=self.app.state.class_entry is not None))

    def click(self, y: int, x: int) -> None:
        """A click at picture pixel (y, x) does what that pane's hit table says."""
        if self.view is not None:
            self.act(self.app.click(self.view, y, x))

    def compute_rate(self) -> float:
        seconds = self.compute.seconds_per_job
        return 1.0 / seconds if seconds else 0.0

    def act(self, action) -> None:
        if action is None:
            return
        if action in self.handlers:
            self.handlers[action]()
        elif action == "export_volume":
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
            self.toggle_source(self._open_camera_or_files)
        elif action == "browser_camera":
            self.app.message = "C: the browser's camera is for the app in a browser (run_toolbox.py --web)"
        elif action in ("next_image", "previous_image"):
            if self.inputs.source.is_camera:
                self.toggle_source(self._open_camera_or_files)
            getattr(self.inputs, "next" if action == "next_image" else "previous")()
        else:
            self.app.act(action, self.snapshot)

    def toggle_source(self, open_other: Callable) -> None:
        """Switch between the source shown and the other one; ``open_other()`` makes the other on first use."""
        if self.other_source is None:
            try:
                self.other_source = open_other()
            except DeepVisError as error:
                self.app.message = str(error)
                return
        self.other_source = self.inputs.switch(self.other_source)

    def _open_camera_or_files(self):
        return open_source("camera" if not self.inputs.source.is_camera else None, self.app.settings)

    def _unit_image(self, path):
        """The loaded per-unit image, a picture of why it cannot be read, or None while it loads."""
        failure = self.images.failure(path)
        return self.images.get(path) if failure is None else unreadable_picture(failure)

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
