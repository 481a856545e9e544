"""The real window with a probe: run_toolbox's window loop in this process's main thread, while a
second thread presses keys with xdotool (as a user would) and samples the live session every 0.1 s: the
frames drawn, the on-demand optimization's step and outcome, the newest snapshot. Prints one JSON
object; with --frames DIR also writes the window's picture about every second there.

    python -m tests.ui_optimize_probe --model M --input DIR --settings FILE [--before "o o"]
        [--cancel-after 2.0] [--frames DIR]

Run by tests/test_ui_window.py in a subprocess (the window needs the main thread and a display).
"""
import argparse
import json
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2

from app.inputs import open_source
from app.net import Net
from app.settings import load_settings
from app.ui.window import Session

TIMEOUT = 120.0   # seconds for the whole probe


def xdotool(*args) -> str:
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=20).stdout


def press(window: str, *keys: str) -> None:
    xdotool("windowfocus", "--sync", window)
    for key in keys:
        xdotool("key", "--window", window, key)
        time.sleep(0.05)


def sample(session: Session, started: float) -> dict:
    progress = session.live.on_demand.worker.progress()
    return dict(t=round(time.monotonic() - started, 3), frames=session.live.frames_drawn,
                step=progress.step if progress else None, outcome=progress.outcome if progress else None,
                snapshot=id(session.live.snapshot), message=session.live.app.message)


def drive(session: Session, args, report: dict) -> None:
    try:
        deadline = time.monotonic() + 60
        found = []
        while not found and time.monotonic() < deadline:
            found = xdotool("search", "--onlyvisible", "--name", session.title).split()
            time.sleep(0.2)
        window = found[-1]
        press(window, *args.before.split())
        time.sleep(2.0)
        started, samples, shot_at = time.monotonic(), [], 0.0
        press(window, "2")
        midway_keys = list(args.midway.split())
        while time.monotonic() - started < TIMEOUT - 60:
            samples.append(sample(session, started))
            progress = session.live.on_demand.worker.progress()
            if midway_keys and progress is not None and progress.step >= 10:
                press(window, *midway_keys)   # the live view's keys while it runs
                report["midway_at"] = round(time.monotonic() - started, 3)
                midway_keys = []
            if args.frames and time.monotonic() - shot_at >= 1.0 and session.live.shown is not None:
                shot_at = time.monotonic()
                cv2.imwrite(str(Path(args.frames) / f"frame_{len(samples):04d}.png"), session.live.shown)
            if args.cancel_after and time.monotonic() - started >= args.cancel_after and "cancel_at" not in report:
                press(window, "Right")
                report["cancel_at"] = round(time.monotonic() - started, 3)
            if progress is not None and progress.outcome and time.monotonic() - started > 0.5:
                break
            time.sleep(0.1)
        time.sleep(1.0)   # the written image loaded and drawn
        samples.append(sample(session, started))
        report["samples"] = samples
        if session.live.shown is not None:
            cv2.imwrite(str(Path(args.grab)), session.live.shown)
        press(window, "q")
    except Exception as error:  # noqa: BLE001 -- reported to the test, and the window still closed
        report["error"] = f"{type(error).__name__}: {error}"
        session.live.app.state = replace(session.live.app.state, quit=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", default=None, help="as run_toolbox.py --input (default: the sample photos)")
    parser.add_argument("--settings", required=True)
    parser.add_argument("--before", default="", help="keys pressed before 2 (xdotool names)")
    parser.add_argument("--midway", default="", help="keys pressed once the run is 10 steps in")
    parser.add_argument("--cancel-after", type=float, default=0.0, help="press Right this many seconds after 2")
    parser.add_argument("--frames", default="", help="a folder for the window's pictures while it runs")
    parser.add_argument("--grab", required=True, help="the window's last picture (PNG)")
    args = parser.parse_args()
    settings = load_settings(args.settings)
    net = Net.load(args.model, provider="cpu", input=settings.model_input or None)
    session = Session(net, settings, open_source(args.input, settings))
    report = {}
    driver = threading.Thread(target=drive, args=(session, args, report), daemon=True)
    driver.start()
    session.run()
    driver.join(5)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
