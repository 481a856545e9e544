"""The live app (LiveSession: the loop the window and the browser share, without a display) keeps
running and says what happened in the status line when the camera goes away mid-stream and comes
back, a file of the folder shown is deleted or damaged, and the output folder of key 2, 4 or W
is read-only."""
import os
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.inputs import CameraSource, open_source
from app.ui.session import LiveSession
from tests import ui_support
from tests.test_ui_window import STATUS, Window, changed, display  # noqa: F401 (display: the Xvfb fixture)

SHOTS = Path("/work/shots/reliab2")


class PluggableCapture:
    """What cv2.VideoCapture gives, from a camera that is unplugged while ``plugged`` is clear."""

    def __init__(self, plugged: threading.Event):
        self.plugged = plugged

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.plugged.is_set()

    def read(self):
        if not self.plugged.is_set():
            return False, None
        return True, cv2.resize(ui_support.digit_image(), (160, 120))

    def release(self) -> None:
        pass


class PluggableCamera(CameraSource):
    """A camera whose cable a test pulls and puts back: opening it fails while it is out."""

    def __init__(self, plugged: threading.Event):
        self.plugged = plugged
        super().__init__(index=5, retry_seconds=0.05, max_retry_seconds=0.2)

    def _open(self):
        return PluggableCapture(self.plugged) if self.plugged.is_set() else None


def run_until(session: LiveSession, done, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"not within {seconds} s; status line: {status_line(session)!r}"
        session.step()
        time.sleep(0.01)


def settle(session: LiveSession, seconds: float = 1.0) -> None:
    """Turns of the loop for ``seconds``: the compute thread catches up with the frame shown."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        session.step()
        time.sleep(0.01)


def status_line(session: LiveSession) -> str:
    return session.view.message if session.view is not None else ""


def keep(session: LiveSession, name: str) -> None:
    if SHOTS.parent.is_dir():
        SHOTS.mkdir(exist_ok=True)
        cv2.imwrite(str(SHOTS / name), session.shown)


def spread(image) -> float:
    low, high = np.percentile(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (1, 99))
    return float(high - low)


@pytest.fixture(scope="module")
def net(testdata):
    return ui_support.mnist_net()


@pytest.fixture
def session_of(net):
    sessions = []

    def start(source, **settings):
        session = LiveSession(net, ui_support.settings(**settings), source).start()
        sessions.append(session)
        return session
    yield start
    for session in sessions:
        session.stop()


def test_the_camera_unplugged_mid_stream_and_back(session_of):
    plugged = threading.Event()
    plugged.set()
    session = session_of(PluggableCamera(plugged))
    run_until(session, lambda: session.snapshot is not None)
    computed = session.snapshot

    plugged.clear()
    run_until(session, lambda: "camera 5: lost" in status_line(session)
              or "camera 5: not found" in status_line(session))
    assert "waiting for camera 5" in status_line(session)
    assert session.inputs.latest().images == ()   # nothing to run the net on
    keep(session, "live_camera_lost.png")
    assert spread(session.shown) > 100

    plugged.set()
    run_until(session, lambda: not session.inputs.latest().waiting and session.snapshot is not computed)
    run_until(session, lambda: "waiting" not in status_line(session))
    keep(session, "live_camera_back.png")
    assert session.view.snapshot is not None and not session.state.quit


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_file_of_the_folder_deleted_or_damaged_while_shown(damage, session_of, tmp_path):
    folder = ui_support.write_images(tmp_path / "digits", 3)
    first, second, _ = sorted(folder.iterdir())
    session = session_of(open_source(str(folder), ui_support.settings(model_input=ui_support.MNIST_INPUT)),
                         model_input=ui_support.MNIST_INPUT)
    run_until(session, lambda: session.snapshot is not None)
    if damage == "deleted":
        second.unlink()
    else:
        second.write_bytes(second.read_bytes()[:60])
    session.act("next_image")
    run_until(session, lambda: second.name in status_line(session))
    settle(session)
    keep(session, f"live_file_{damage}.png")
    assert spread(session.shown) > 100
    session.act("next_image")   # the app goes on to the next one, which reads
    run_until(session, lambda: second.name not in status_line(session) and session.snapshot is not None
              and session.inputs.latest() is not None and not session.inputs.latest().waiting)
    assert not session.state.quit


@pytest.fixture
def read_only(tmp_path):
    """A folder nothing can be written in: mode 0555, and for root (whom modes do not stop) also
    immutable (chattr +i; the test is skipped where that is not permitted)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = os.access(folder, os.W_OK) and subprocess.run(["chattr", "+i", str(folder)],
                                                               capture_output=True).returncode == 0
    if os.access(folder, os.W_OK) and not immutable:
        folder.chmod(0o755)
        pytest.skip("running as root without chattr +i: no folder is read-only here")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


def test_keys_2_4_and_w_say_when_their_folder_is_read_only(read_only, session_of, tmp_path):
    folder = ui_support.write_images(tmp_path / "digits", 2)
    session = session_of(open_source(str(folder), ui_support.settings(model_input=ui_support.MNIST_INPUT)),
                         model_input=ui_support.MNIST_INPUT, unit_jpg_dir=str(read_only / "units"),
                         volume_dir=str(read_only / "volumes"), save_view_dir=str(read_only / "views"),
                         optimize_app_steps=2)
    run_until(session, lambda: session.snapshot is not None)
    session.act("save_view")
    run_until(session, lambda: status_line(session).startswith("save view:"))
    assert status_line(session).startswith(f"save view: {read_only / 'views'}: ")
    session.act("export_volume")
    run_until(session, lambda: status_line(session).startswith("volume:"))
    assert str(read_only / "volumes") in status_line(session)
    session.act("optimize_unit")
    run_until(session, lambda: str(read_only / "units") in status_line(session))
    assert "cannot write" in status_line(session) and "Error" not in status_line(session)
    keep(session, "live_write_read_only.png")
    assert not any(read_only.iterdir()) and not session.state.quit


MESSAGE_LINE, INPUT = (918, 0, 26, 1500), (0, 0, 240, 300)   # the status line's second line (no fps); the input


def test_the_window_goes_on_when_files_of_its_folder_are_deleted_or_damaged_while_shown(display, tmp_path, testdata):
    window = Window(display, tmp_path)   # the folder of digit_0.png, digit_1.png and digit_2.png
    digits = tmp_path / "digits"
    try:
        shown = window.grab(2.0)
        (digits / "digit_1.png").unlink()
        window.key("e")   # the next image: digit_1 is skipped, digit_2 shown
        deleted = window.grab()
        assert changed(shown, deleted, MESSAGE_LINE, 10) and changed(shown, deleted, INPUT)
        (digits / "digit_0.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
        window.key("e")   # round to digit_0, which is damaged now: skipped, digit_2 stays
        damaged = window.grab()
        assert changed(deleted, damaged, MESSAGE_LINE, 10) and not changed(deleted, damaged, INPUT)
        assert window.process.poll() is None
        if SHOTS.parent.is_dir():
            SHOTS.mkdir(exist_ok=True)
            cv2.imwrite(str(SHOTS / "window_file_deleted.png"), deleted)
            cv2.imwrite(str(SHOTS / "window_file_damaged.png"), damaged)
        window.key("q")
        assert window.process.wait(5) == 0, window.process.stderr.read()
    finally:
        window.close()
