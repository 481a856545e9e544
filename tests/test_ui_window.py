"""The real window under Xvfb: keys sent with xdotool change what it shows, a click on a tile selects
its unit, and `q` closes it within a second.

Needs the Debian packages xvfb, xdotool and imagemagick (`import` grabs the window); the tests skip,
saying so, when one is missing.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests import ui_support, ui_x11

ROOT = Path(__file__).resolve().parents[1]
TITLE = "DeepVis Toolbox"
TOOLS = ("Xvfb", "xdotool", "import")


def _free_display() -> int:
    for number in range(91, 200):
        if not Path(f"/tmp/.X{number}-lock").exists() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return number
    raise RuntimeError("no free X display number")


@pytest.fixture(scope="module")
def display():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not found: apt-get install xvfb xdotool imagemagick")
    number = _free_display()
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1600x1100x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            pytest.skip(f"Xvfb :{number} did not start in 10 s: try `Xvfb :{number}` by hand (apt-get install xvfb)")
        time.sleep(0.05)
    yield f":{number}"
    server.terminate()
    server.wait(5)


class Window:
    """The app running in a subprocess on the Xvfb display, driven by xdotool."""

    def __init__(self, display: str, tmp_path: Path):
        folder = ui_support.write_images(tmp_path / "digits", 3)
        settings = tmp_path / "settings.py"
        settings.write_text(f"model_input = {ui_support.MNIST_INPUT!r}\nkey_wait_ms = 5\n"
                            f"volume_dir = {str(tmp_path / 'volumes')!r}\n"
                            f"save_view_dir = {str(tmp_path / 'views')!r}\n")
        self.env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
        self.arguments = [sys.executable, str(ROOT / "run_toolbox.py"), "--model", str(ui_support.MNIST), "--input",
                          str(folder), "--cpu", "--settings", str(settings)]
        self.process = subprocess.Popen(self.arguments, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.window = self._find_window()
        self.tmp_path = tmp_path

    def _xdotool(self, *args) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=20).stdout

    def _find_window(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = self._xdotool("search", "--onlyvisible", "--name", TITLE).split()
            if found:
                return found[-1]
            if self.process.poll() is not None:
                raise AssertionError(f"the app exited: {self.process.stderr.read()}")
            time.sleep(0.2)
        raise AssertionError("no app window within 60 s")

    def key(self, *names: str) -> None:
        self._xdotool("windowfocus", "--sync", self.window)
        for name in names:
            self._xdotool("key", "--window", self.window, name)
            time.sleep(0.05)

    def click(self, x: int, y: int) -> None:
        self._xdotool("mousemove", "--window", self.window, "--sync", str(x), str(y))
        time.sleep(0.1)   # the pointer has arrived before the button goes down
        self._xdotool("click", "--window", self.window, "1")

    def grab(self, settle: float = 0.5) -> np.ndarray:
        """The window's pixels once they stop changing (the compute thread has caught up)."""
        time.sleep(settle)
        image, deadline = self._snap(), time.monotonic() + 15
        while time.monotonic() < deadline:   # a loaded machine can take longer than settle
            time.sleep(0.5)
            later = self._snap()
            # the status line's FPS keeps moving; an all-black grab is a window not painted yet (never a frame)
            if np.array_equal(later[:STATUS[0]], image[:STATUS[0]]) and later.any():
                return later
            image = later
        return image

    def _snap(self) -> np.ndarray:
        out = self.tmp_path / "grab.png"
        subprocess.run(["import", "-window", self.window, str(out)], env=self.env, check=True, timeout=20)
        return cv2.imread(str(out))

    def headless(self, keys: str) -> np.ndarray:
        """The same app rendered by --screenshot after the --keys ``keys``: what the window should show."""
        out = self.tmp_path / "headless.png"
        subprocess.run(self.arguments + ["--screenshot", str(out), "--keys", keys], cwd=ROOT, check=True,
                       capture_output=True, timeout=120)
        return cv2.imread(str(out))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


@pytest.fixture
def window(display, tmp_path, testdata):
    app = Window(display, tmp_path)
    yield app
    app.close()


def region(image, top, left, height, width):
    return image[top:top + height, left:left + width].astype(int)


def changed(before, after, box, pixels: int = 300) -> bool:
    """More than ``pixels`` pixels of the box differ clearly (an outline moving is enough)."""
    return np.count_nonzero(np.abs(region(before, *box) - region(after, *box)).sum(axis=2) > 30) > pixels


BACK, LAYERS, CONTROL, STATUS = (600, 0, 300, 300), (30, 300, 870, 900), (0, 300, 30, 900), (900, 0, 48, 1500)
AUX = (300, 0, 300, 300)


def gray_share(image) -> float:
    return float(np.mean(np.all(region(image, *BACK) == 128, axis=2)))


def test_keys_change_layer_unit_backprop_mode_and_view(window):
    start = window.grab(2.0)
    assert start.shape[:2] == (978, 1500)
    window.key("o", "o")
    relu = window.grab()
    assert changed(start, relu, CONTROL) and changed(start, relu, LAYERS)
    window.key("Right")
    unit1 = window.grab()
    assert changed(relu, unit1, LAYERS) and changed(relu, unit1, STATUS, 10)
    assert gray_share(unit1) > 0.9                      # backprop off: gray
    window.key("b")
    grad = window.grab()
    assert gray_share(grad) < 0.5 and region(grad, *BACK).std() > 3
    window.key("n", "n")
    norm = window.grab()
    assert changed(grad, norm, BACK)


def test_click_on_a_tile_selects_its_unit_and_q_quits_within_a_second(window):
    window.key("o", "o")
    before = window.grab(2.0)
    # mnist's third layer: 8 tiles in 3 columns over the 870 x 900 layers pane; click the fifth (row 1, col 1)
    window.click(300 + 450, 30 + 435)
    after = window.grab()
    assert changed(before, after, LAYERS) and changed(before, after, STATUS, 10)
    window.click(300 + 450, 30 + 435 + 300)               # the eighth tile
    assert changed(after, window.grab(), LAYERS)
    window.key("q")
    start = time.monotonic()
    window.process.wait(5)
    assert time.monotonic() - start < 1.0
    assert window.process.returncode == 0, window.process.stderr.read()


def test_the_3d_view_turns_and_4_writes_the_volume(window):
    window.key("o", "o", "3")
    first = window.grab(1.5)
    second = window.grab(0.5)
    assert changed(first, second, AUX, 100)                 # the volume keeps turning
    window.key("4")
    assert changed(second, window.grab(0.5), STATUS, 10)    # the written paths in the status line


def test_the_class_entry_takes_the_keys_and_enter_selects_the_class_with_backprop_from_it(window):
    """mnist-8's 10-value output is its class layer: "/", then "z" (zoom, were it not typed) erased,
    "7" and Return select class 7 there with the backprop frozen on it, as --keys "/7<Enter>" does."""
    start = window.grab(2.0)
    window.key("slash", "z", "BackSpace", "7")
    typing = window.grab()
    assert not changed(window.headless("/7"), typing, AUX, 20)                 # the entry lists class 7
    assert not changed(start, typing, LAYERS, 20)                              # z did not zoom
    window.key("Return")
    picked = window.grab()
    expected = window.headless("/7<Enter>")
    for box in (CONTROL, LAYERS, AUX, BACK):
        assert not changed(expected, picked, box, 20), box
    assert changed(start, picked, LAYERS) and changed(start, picked, BACK)    # the class layer, backprop on
    assert gray_share(picked) < 0.5


def test_closing_the_window_stops_the_app(window):
    if ui_x11.library() is None:
        pytest.skip("libX11 not found: apt-get install libx11-6")
    window.grab(1.0)
    ui_x11.request_close(window.env["DISPLAY"], int(window.window))
    start = time.monotonic()
    window.process.wait(5)
    assert time.monotonic() - start < 1.5
    assert window.process.returncode == 0, window.process.stderr.read()


def test_key_calibration_prints_codes_and_actions(display):
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    process = subprocess.Popen([sys.executable, str(ROOT / "run_toolbox.py"), "--test-keys"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60   # as long as the app window gets: a loaded machine starts slowly
        window = []
        while not window and time.monotonic() < deadline:
            window = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "DeepVis key test"], env=env,
                                    capture_output=True, text=True).stdout.split()
            time.sleep(0.1)
        assert window, "no key test window"
        for key in ("Left", "b", "shift+b", "q"):
            subprocess.run(["xdotool", "windowfocus", "--sync", window[0]], env=env, timeout=10)
            subprocess.run(["xdotool", "key", "--window", window[0], key], env=env, timeout=10)
            time.sleep(0.2)
        out, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert "-> left" in out and "-> next_backprop_mode" in out and "-> quit" in out
    assert "Shift" in out and "'B' -> previous_backprop_mode" in out


def rendered(window, key_text: str) -> np.ndarray:
    """What --screenshot draws for ``key_text`` on the window's input and settings (our own key handling)."""
    from app.inputs import open_source
    from app.settings import load_settings
    from app.ui.app import screenshot

    settings = load_settings(str(window.tmp_path / "settings.py"))
    out = window.tmp_path / "rendered.png"
    screenshot(ui_support.mnist_net(), settings, open_source(str(window.tmp_path / "digits"), settings), out,
               key_text)
    return cv2.imread(str(out))


def same_panes(grabbed, expected) -> bool:
    """Everything above the status line (its fps differs) is the same picture."""
    return np.array_equal(grabbed[:STATUS[0]], expected[:STATUS[0]])


def test_shift_keys_reach_their_actions(window):
    """Shift + b / n / s / t / j in the real window (OpenCV's Qt backend gives them lower case) do what
    B N S T J do, whether Shift is pressed with the letter, held over several letters, or sent as 'B'."""
    window.key("o", "o")
    window.grab(2.0)
    assert not same_panes(rendered(window, "oob"), rendered(window, "ooB"))   # the test can tell them apart
    for keys_sent, key_text in ((("shift+b",), "ooB"), (("shift+n",), "ooBN"), (("S",), "ooBNS"),
                                (("shift+t",), "ooBNST"), (("Right",) * 4 + ("shift+j",), "ooBNST" + "<Right>" * 4 + "J")):
        window.key(*keys_sent)
        assert same_panes(window.grab(), rendered(window, key_text)), keys_sent
    window._xdotool("keydown", "--window", window.window, "shift")
    window.key("n", "n")
    window._xdotool("keyup", "--window", window.window, "shift")
    assert same_panes(window.grab(), rendered(window, "ooBNST<Right><Right><Right><Right>JNN"))


@pytest.mark.parametrize("display", [None, ":1999"])
@pytest.mark.parametrize("mode", [[], ["--test-keys"]])
def test_no_display_exits_2_with_one_line_naming_screenshot(display, mode):
    env = {name: value for name, value in os.environ.items() if name not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    if display:
        env["DISPLAY"] = display   # no X server there
    done = subprocess.run([sys.executable, str(ROOT / "run_toolbox.py"), "--model", str(ui_support.MNIST), *mode],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--screenshot OUT.png" in lines[0] and "display" in lines[0], lines


def saved_views(window) -> list:
    folder = window.tmp_path / "views"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_save_view_writes_what_the_window_shows(window):
    window.key("o", "o", "b")
    before = window.grab(2.0)
    window.key("W")
    deadline = time.monotonic() + 10
    while not saved_views(window) and time.monotonic() < deadline:
        time.sleep(0.1)
    saved = cv2.imread(str(saved_views(window)[0]))
    assert same_panes(saved, before)
    after = window.grab()
    assert changed(before, after, STATUS, 10)   # the status line names the file
    window.click(1312, 963)                     # the Save button
    deadline = time.monotonic() + 10
    while len(saved_views(window)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(saved_views(window)) == 2


JPGVIS = (0, 1200, 900, 300)
OPT_ROW = (0, 1200, 300, 300)   # the jpgvis pane's top row: the optimized image


def probe(display, tmp_path, *options, steps: int) -> tuple:
    """Key 2 pressed in the real window on mnist's ReLU32:1 (tests/ui_optimize_probe.py); returns its
    report, the window's last picture and the unit image folder."""
    units = tmp_path / "units"
    settings = tmp_path / "settings.py"
    settings.write_text(f"model_input = {ui_support.MNIST_INPUT!r}\nkey_wait_ms = 5\n"
                        f"unit_jpg_dir = {str(units)!r}\noptimize_app_steps = {steps}\n"
                        "optimize_preset = 3\n")   # the paper's: its best image so far has contrast from the start
    folder = ui_support.write_images(tmp_path / "digits", 3)
    grab = tmp_path / "last.png"
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    done = subprocess.run([sys.executable, "-m", "tests.ui_optimize_probe", "--model", str(ui_support.MNIST),
                           "--input", str(folder), "--settings", str(settings), "--before", "o o Right",
                           "--grab", str(grab), *options], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in report, report["error"]
    return report, cv2.imread(str(grab)), units


def spread(image) -> float:
    """The 1st-99th percentile spread of the gray levels: a flat pane has none."""
    gray = np.asarray(image, float).mean(axis=2)
    return float(np.percentile(gray, 99) - np.percentile(gray, 1))


def test_the_window_keeps_drawing_while_2_optimizes_the_unit_and_then_shows_it(display, tmp_path):
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    report, last, units = probe(display, tmp_path, "--midway", "m b", "--frames", str(frames_dir), steps=3000)
    samples = report["samples"]
    running = [s for s in samples if s["outcome"] == "" and s["step"] is not None]
    assert samples[-1]["outcome"] == "written" and running[-1]["t"] - running[0]["t"] > 1.0
    # every half second of the run, the window drew new pictures and the optimization went on
    marks = [running[0]]
    for s in running:
        if s["t"] - marks[-1]["t"] >= 0.5:
            marks.append(s)
    assert len(marks) >= 3
    assert all(b["frames"] > a["frames"] and b["step"] > a["step"] for a, b in zip(marks, marks[1:])), marks
    # b, pressed while it ran, had the compute thread make a new snapshot (backprop on) before it ended
    assert any(s["snapshot"] != running[0]["snapshot"] for s in running if s["t"] > report["midway_at"])
    # the pane showed the image improving, then the written file
    pictures = [cv2.imread(str(path)) for path in sorted(frames_dir.iterdir())]
    assert len(pictures) >= 2 and all(spread(region(p, *OPT_ROW)) > 40 for p in pictures)
    assert changed(pictures[0], pictures[-1], OPT_ROW)
    written = cv2.imread(str(units / "ReLU32_Output_0" / "unit_0001" / "opt.png"))
    assert written is not None and spread(region(last, *OPT_ROW)) > 40
    assert "optimized ReLU32_Output_0:1 (3000 steps, activation" in samples[-1]["message"]


def test_moving_to_another_unit_cancels_the_optimization_in_the_window(display, tmp_path):
    report, _, units = probe(display, tmp_path, "--cancel-after", "1.5", steps=1000000)
    samples = report["samples"]
    assert samples[-1]["outcome"] == "cancelled"
    assert max(s["step"] or 0 for s in samples) >= 5
    assert not units.exists() or not any(units.rglob("*.png"))
