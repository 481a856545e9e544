"""The app's background threads: newest-only semantics, the byte-bounded cache, shutdown."""
import threading
import time

import cv2
import numpy as np
import pytest

from app.errors import DeepVisError
from app.inputs import DirectorySource, Frame, InputSource
from app.ui.workers import ComputeWorker, Heartbeat, InputWorker, UnitImageLoader


def eventually(condition, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


def finished(worker, job) -> bool:
    """The worker's newest finished job is ``job``."""
    latest = worker.latest()
    return latest is not None and latest.job == job


@pytest.fixture
def workers():
    """Started workers, stopped at the end even when a test fails."""
    started = []
    yield lambda worker: started.append(worker.start()) or worker
    for worker in started:
        worker.stop()


class CountingSource(InputSource):
    """A live source whose frames are numbered 0, 1, 2, ... as fast as they are read."""

    is_live = True

    def __init__(self):
        super().__init__()
        self.number, self.closed, self.commands = -1, False, []

    def read(self):
        self.number += 1
        return Frame((np.zeros((2, 2, 3), np.uint8),), "counting", index=self.number, count=0)

    def next(self):
        self.commands.append("next")

    def close(self):
        self.closed = True


# --- heartbeat ---------------------------------------------------------------------------------

def test_heartbeat_goes_silent_after_its_timeout():
    heartbeat = Heartbeat(timeout=0.05)
    assert heartbeat.alive()
    time.sleep(0.08)
    assert not heartbeat.alive()
    heartbeat.beat()
    assert heartbeat.alive()


# --- input worker ------------------------------------------------------------------------------

def test_input_worker_keeps_only_the_newest_frame(workers):
    source = CountingSource()
    worker = workers(InputWorker(source))
    assert eventually(lambda: worker.latest() is not None and worker.latest().index > 20)
    worker.stop()
    assert worker.latest().index == source.number        # the last frame read, none older
    assert source.closed


@pytest.fixture
def folder(tmp_path):
    for value in (1, 2, 3):
        cv2.imwrite(str(tmp_path / f"{value}.png"), np.full((8, 8, 3), value, np.uint8))
    return tmp_path


def test_input_worker_steps_and_switches_sources(workers, folder):
    files = DirectorySource(folder)
    worker = workers(InputWorker(files))
    assert eventually(lambda: worker.latest() is not None)
    worker.next()
    assert eventually(lambda: worker.latest().name == "2.png")
    worker.previous()
    worker.previous()
    assert eventually(lambda: worker.latest().name == "3.png")

    live = CountingSource()
    assert worker.switch(live) is files and worker.source is live
    assert eventually(lambda: worker.latest().name == "counting")
    worker.next()
    assert eventually(lambda: live.commands == ["next"])

    assert worker.switch(files) is live
    assert eventually(lambda: worker.latest().name == "3.png")   # shown again, position kept
    assert not live.closed                                         # the caller decides


def test_input_worker_freezes_a_live_source(workers):
    source = CountingSource()
    worker = workers(InputWorker(source))
    worker.toggle_freeze()
    assert eventually(lambda: source.frozen)


# --- compute worker ----------------------------------------------------------------------------

def test_compute_runs_only_the_newest_job(workers):
    release, ran = threading.Event(), []

    def compute(job):
        ran.append(job)
        if job == 1:
            release.wait(2)
        return job * 10

    worker = workers(ComputeWorker(compute))
    worker.submit(1)
    assert eventually(lambda: ran == [1])
    for job in (2, 3, 4):
        worker.submit(job)                 # returns at once while job 1 runs
    release.set()
    assert eventually(lambda: finished(worker, 4))
    assert ran == [1, 4]
    done = worker.latest()
    assert (done.job, done.result, done.error) == (4, 40, "")
    assert worker.seconds_per_job > 0 and done.seconds >= 0


def test_compute_errors_become_messages_and_the_worker_goes_on(workers, capsys):
    def compute(job):
        if job == "bad file":
            raise DeepVisError("x.onnx: conv1: weights missing")
        if job == "bug":
            raise ZeroDivisionError("division by zero")
        return "fine"

    worker = workers(ComputeWorker(compute))
    worker.submit("bad file")
    assert eventually(lambda: finished(worker, "bad file"))
    assert worker.latest().error == "x.onnx: conv1: weights missing" and worker.latest().result is None
    worker.submit("bug")
    assert eventually(lambda: finished(worker, "bug"))
    assert worker.latest().error == "ZeroDivisionError: division by zero"
    assert "Traceback" in capsys.readouterr().err
    worker.submit("ok")
    assert eventually(lambda: finished(worker, "ok")) and worker.latest().result == "fine"


# --- unit image loader -------------------------------------------------------------------------

@pytest.fixture
def unit_images(tmp_path):
    """Four 10 x 10 images (300 bytes each once decoded)."""
    paths = []
    for value in range(4):
        path = tmp_path / f"unit_{value}.png"
        cv2.imwrite(str(path), np.full((10, 10, 3), value, np.uint8))
        paths.append(path)
    return paths


def loaded(loader, path):
    result = []
    assert eventually(lambda: result.append(loader.get(path)) or result[-1] is not None)
    return result[-1]


def test_loader_returns_none_until_loaded(workers, unit_images):
    loader = UnitImageLoader(max_bytes=10_000)
    assert loader.get(unit_images[1]) is None              # not started: nothing loads
    workers(loader)
    assert loaded(loader, unit_images[1])[0, 0, 0] == 1


def test_loader_cache_stays_within_its_bytes_and_evicts_least_recently_used(workers, unit_images):
    loader = workers(UnitImageLoader(max_bytes=2 * 300))
    first, second, third, _ = unit_images
    loaded(loader, first)
    loaded(loader, second)
    assert loader.get(first) is not None                   # first is now the most recent
    loaded(loader, third)
    assert loader.cached_bytes <= 600
    assert loader.get(second) is None                      # least recently used: evicted
    assert loader.get(first) is not None and loader.get(third) is not None


def test_loader_remembers_why_an_image_is_missing_or_too_big(workers, tmp_path):
    loader = workers(UnitImageLoader(max_bytes=600))
    missing, big = tmp_path / "nowhere.png", tmp_path / "big.png"
    cv2.imwrite(str(big), np.zeros((20, 20, 3), np.uint8))          # 1200 bytes decoded
    loader.get(missing)
    loader.get(big)
    assert eventually(lambda: loader.failure(missing) and loader.failure(big))
    assert "no such image file" in loader.failure(missing)
    assert "more than the whole image cache" in loader.failure(big)
    assert loader.get(missing) is None and loader.get(big) is None
    assert loader.cached_bytes <= 600


# --- shutdown ----------------------------------------------------------------------------------

def every_worker(heartbeat=None):
    return [InputWorker(CountingSource(), heartbeat),
            ComputeWorker(lambda job: job, heartbeat),
            UnitImageLoader(1000, heartbeat)]


def test_stop_ends_every_thread_within_a_second():
    running = [worker.start() for worker in every_worker()]
    time.sleep(0.05)
    start = time.monotonic()
    for worker in running:
        worker.stop()
    assert time.monotonic() - start < 1.0
    assert not any(worker.running for worker in running)
    assert all(worker._thread.daemon for worker in running)


def test_threads_stop_when_the_heartbeat_goes_silent():
    heartbeat = Heartbeat(timeout=1.0)   # a loaded machine may hold the beating thread back a few 100 ms
    running = [worker.start() for worker in every_worker(heartbeat)]
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:                     # the main loop is alive...
        heartbeat.beat()
        time.sleep(0.02)
    assert all(worker.running for worker in running)
    # ...and then hangs: no more beats
    assert eventually(lambda: not any(worker.running for worker in running), timeout=5.0)
    assert running[0].source.closed
