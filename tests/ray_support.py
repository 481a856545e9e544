"""What the Ray tests share: a time bound on every test, a random-weight Caffe net, scikit-image's
sample images (and one file that is no image), and a job that reports its actor so a test can kill it."""
import contextlib
import shutil
import signal
import time
from pathlib import Path

import pytest
from skimage import data as skimage_data

from app.errors import DeepVisError
from app.net import Net
from app.offline.maxes import Scorer

TESTDATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"
CIFAR = TESTDATA / "cifar10_quick" / "cifar10_quick.prototxt"
SAMPLES = Path(skimage_data.__file__).parent


@contextlib.contextmanager
def time_bound(seconds: int):
    """Fails the test (TimeoutError in the main thread) when the block runs longer than ``seconds``:
    a Ray job that waits for resources it will never get must not hang the suite."""
    def expire(signum, frame):
        raise TimeoutError(f"over the {seconds} s bound of this Ray test")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def random_net_file() -> Path:
    """cifar10_quick's prototxt with seeded random weights, as the ONNX file the tools load."""
    if not CIFAR.is_file():
        pytest.skip(f"test data {CIFAR} is missing")
    return Net.load(str(CIFAR), provider="cpu", random_weights=0).path


def sample_images(folder: Path) -> list:
    """scikit-image's sample photos (colour and gray, PNG and JPEG) copied to ``folder``, and
    "broken.png", which is no image: the paths, in name order."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(SAMPLES.glob("*.png")) + sorted(SAMPLES.glob("*.jpg")):
        shutil.copy(path, folder / path.name)
    (folder / "broken.png").write_bytes(b"not an image")
    return sorted(str(path) for path in folder.iterdir())


class ReportedScorer(Scorer):
    """A Scorer that, on each task, puts its actor's handle in ``queue`` and takes ``pause`` seconds
    more: the test kills the actor while the task runs."""

    def __init__(self, net, queue, pause: float, **settings):
        super().__init__(net, **settings)
        self.queue, self.pause = queue, pause

    def __call__(self, task):
        import ray

        self.queue.put(ray.get_runtime_context().current_actor)
        time.sleep(self.pause)
        return super().__call__(task)


class ReportingPool:
    """A Pool whose find_maxes actors are ReportedScorers."""

    def __init__(self, pool, queue, pause: float):
        self.pool, self.queue, self.pause = pool, queue, pause

    def map(self, make_job, settings, tasks, net=None):
        assert make_job is Scorer
        return self.pool.map(ReportedScorer, {"queue": self.queue, "pause": self.pause, **settings}, tasks, net)


def failing_job(message: str):
    """A job whose every task fails as a worker's own error does (a DeepVisError)."""
    def run(task):
        raise DeepVisError(f"{task}: {message}")
    return run
