"""The app's background threads. The main thread owns the window and never waits on them.

    heartbeat = Heartbeat(settings.heartbeat_timeout_seconds)
    inputs = InputWorker(open_source(args.input, settings), heartbeat).start()
    compute = ComputeWorker(run_net, heartbeat).start()       # run_net(job) -> result
    images = UnitImageLoader(settings.unit_image_cache_bytes, heartbeat).start()
    while running:
        heartbeat.beat()
        frame = inputs.latest()               # newest frame, or None before the first
        compute.submit(job)                   # replaces any job not started yet
        done = compute.latest()               # Completed(job, result, seconds, error) or None
        picture = images.get(path)            # None until loaded (or when it cannot be)
    for worker in (inputs, compute, images):
        worker.stop()

Every thread is a daemon, stops within a fraction of a second of stop() (a job in progress is
finished first), and stops by itself when the heartbeat has been silent for its timeout: a
hung or crashed main loop never leaves threads behind.
"""
import sys
import threading
import time
import traceback
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from app.errors import DeepVisError
from app.inputs import Frame, InputSource
from app.net.preprocess import read_image

_NOTHING = object()


class Heartbeat:
    """Beaten by the main loop every iteration; alive() turns False after ``timeout`` silent seconds."""

    def __init__(self, timeout: float = 10.0):
        self.timeout = timeout
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    def alive(self) -> bool:
        return time.monotonic() - self._last < self.timeout


class Worker:
    """A daemon thread that calls ``_step()`` until stop() or until the heartbeat goes silent.

    ``_step()`` returns True when it did something (then it is called again at once); otherwise
    the thread sleeps ``idle_seconds`` or until ``_wake`` is set.
    """

    idle_seconds = 0.01

    def __init__(self, name: str, heartbeat: Optional[Heartbeat] = None):
        self._heartbeat = heartbeat
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "Worker":
        """Start the thread; returns self."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the thread to end and wait for it (at most ``timeout`` seconds)."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set() and (self._heartbeat is None or self._heartbeat.alive()):
                self._wake.clear()
                if not self._step():
                    self._wake.wait(self.idle_seconds)
        finally:
            self._stopping.set()
            self._finish()

    def _step(self) -> bool:
        raise NotImplementedError

    def _finish(self) -> None:
        """Called in the thread as it ends."""


class InputWorker(Worker):
    """Polls an input source and keeps only its newest frame.

    next(), previous(), toggle_freeze(), call() and switch() may be called from any thread; all but
    switch() are carried out by the worker thread before its next read. On stopping, the worker
    closes the source it is reading (not the ones switched away from).
    """

    idle_seconds = 0.005

    def __init__(self, source: InputSource, heartbeat: Optional[Heartbeat] = None):
        super().__init__("input", heartbeat)
        self._lock = threading.Lock()
        self._source = source
        self._latest: Optional[Frame] = None
        self._commands = deque()
        self._reshow = True

    def latest(self) -> Optional[Frame]:
        """The newest frame read (it stays until a newer one comes), or None before the first."""
        return self._latest

    @property
    def source(self) -> InputSource:
        """The source being read now."""
        return self._source

    def next(self) -> None:
        self._command("next")

    def previous(self) -> None:
        self._command("previous")

    def toggle_freeze(self) -> None:
        self._command("toggle_freeze")

    def switch(self, source: InputSource) -> InputSource:
        """Read ``source`` from now on (its current frame is shown again); returns the previous
        source, which the caller keeps (to switch back) or closes."""
        with self._lock:
            previous, self._source = self._source, source
            self._commands.clear()
            self._reshow = True
        self._wake.set()
        return previous

    def call(self, method: str, *args) -> None:
        """Call the source's ``method(*args)`` in the worker thread before its next read."""
        self._command(method, *args)

    def _command(self, name: str, *args) -> None:
        self._commands.append((name, args))
        self._wake.set()

    def _step(self) -> bool:
        with self._lock:
            source, reshow, self._reshow = self._source, self._reshow, False
            commands = [self._commands.popleft() for _ in range(len(self._commands))]
        if reshow:
            source.reshow()
        for name, args in commands:
            getattr(source, name)(*args)
        frame = source.read()
        with self._lock:
            if frame is None or source is not self._source:
                return False
            self._latest = frame
        return True

    def _finish(self) -> None:
        self._source.close()


@dataclass(frozen=True)
class Completed:
    """A finished job: what was asked, what came out (None on error), how long it took."""

    job: object
    result: object
    seconds: float
    error: str = ""        # one line when compute raised, else ""


class ComputeWorker(Worker):
    """Runs ``compute(job) -> result`` on the newest submitted job only.

    A job submitted while another waits replaces it (the older one is dropped, never run). A
    DeepVisError from compute becomes Completed.error; any other exception too, with its
    traceback printed to stderr, and the worker goes on with the next job.
    """

    SMOOTHING = 0.2   # weight of the newest job in the running mean of seconds per job

    def __init__(self, compute: Callable[[object], object], heartbeat: Optional[Heartbeat] = None,
                 name: str = "compute"):
        super().__init__(name, heartbeat)
        self._compute = compute
        self._done = threading.Condition()
        self._pending = _NOTHING
        self._running = False
        self._latest: Optional[Completed] = None
        self._seconds_per_job: Optional[float] = None

    def submit(self, job) -> None:
        """Queue ``job``, replacing any job not started yet. Returns at once."""
        with self._done:
            self._pending = job
        self._wake.set()

    def latest(self) -> Optional[Completed]:
        """The most recently finished job, or None before the first."""
        return self._latest

    @property
    def seconds_per_job(self) -> Optional[float]:
        """Running mean of the time compute takes (1 / this = the frames per second shown)."""
        return self._seconds_per_job

    def _step(self) -> bool:
        with self._done:
            job, self._pending = self._pending, _NOTHING
            if job is _NOTHING:
                return False
            self._running = True
        start = time.perf_counter()
        result, error = guarded_call(self._compute, job)
        seconds = time.perf_counter() - start
        with self._done:
            self._latest = Completed(job, result, seconds, error)
            mean = self._seconds_per_job
            self._seconds_per_job = seconds if mean is None else mean + self.SMOOTHING * (seconds - mean)
            self._running = False
            self._done.notify_all()
        return True

    def _finish(self) -> None:
        with self._done:
            self._running = False
            self._done.notify_all()


def guarded_call(compute, job):
    """(compute(job), "") or (None, one-line error): a bug in one job must not end a worker thread."""
    try:
        return compute(job), ""
    except DeepVisError as error:
        return None, str(error)
    except Exception as error:  # noqa: BLE001 -- a bug in one job must not kill the app's compute thread
        traceback.print_exc(file=sys.stderr)
        return None, f"{type(error).__name__}: {error}"


class UnitImageLoader(Worker):
    """Loads per-unit images (PNG/JPG files) in the background into a cache bounded in bytes.

    get(path) returns the image once loaded and None before (asking for it queues the load; the
    most recent requests load first). The least recently used images are evicted to keep the
    cache within ``max_bytes``. A file that cannot be read, or is larger than the whole cache,
    stays None; failure(path) says why.
    """

    FAILURE_BYTES = 256      # what a remembered failure counts against the bound
    MAX_QUEUED = 512         # older requests beyond this are dropped (asked again, they come back)

    def __init__(self, max_bytes: int, heartbeat: Optional[Heartbeat] = None,
                 load: Callable[[str], np.ndarray] = read_image):
        super().__init__("unit-images", heartbeat)
        self.max_bytes = int(max_bytes)
        self._load = load
        self._lock = threading.Lock()
        self._cache = OrderedDict()    # path -> image, or the reason (str) it could not be loaded
        self._bytes = 0
        self._queue = OrderedDict()    # paths asked for, oldest first

    def get(self, path) -> Optional[np.ndarray]:
        """The image at ``path`` (H x W x 3 uint8 BGR) if cached, else None (and its load is queued)."""
        key = str(path)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                entry = self._cache[key]
                return entry if isinstance(entry, np.ndarray) else None
            self._queue[key] = None
            self._queue.move_to_end(key)
            while len(self._queue) > self.MAX_QUEUED:
                self._queue.popitem(last=False)
        self._wake.set()
        return None

    def failure(self, path) -> Optional[str]:
        """Why ``path`` could not be loaded, or None (loaded, loading, or never asked for)."""
        with self._lock:
            entry = self._cache.get(str(path))
        return entry if isinstance(entry, str) else None

    def forget(self, path) -> None:
        """Drop ``path`` from the cache (its file was written again): the next get() loads it anew."""
        with self._lock:
            entry = self._cache.pop(str(path), None)
            if entry is not None:
                self._bytes -= _cost(entry)

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    def _step(self) -> bool:
        with self._lock:
            if not self._queue:
                return False
            key, _ = self._queue.popitem(last=True)
        try:
            entry = self._load(key)
        except DeepVisError as error:
            entry = str(error)
        if isinstance(entry, np.ndarray) and entry.nbytes > self.max_bytes:
            entry = f"{key}: {entry.nbytes} bytes, more than the whole image cache ({self.max_bytes})"
        with self._lock:
            self._insert(key, entry)
        return True

    def _insert(self, key: str, entry) -> None:
        if key in self._cache:
            self._bytes -= _cost(self._cache.pop(key))
        self._cache[key] = entry
        self._bytes += _cost(entry)
        while self._bytes > self.max_bytes:
            _, evicted = self._cache.popitem(last=False)
            self._bytes -= _cost(evicted)


def _cost(entry) -> int:
    return entry.nbytes if isinstance(entry, np.ndarray) else UnitImageLoader.FAILURE_BYTES
