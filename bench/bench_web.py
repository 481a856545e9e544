"""Frames per second a browser receives against the desktop loop's rate, and key-to-new-frame latency.

    python bench/bench_web.py [--model M] [--seconds 5] [--rounds 2] [--keys 20]

Both sides run in this process on the same net, on a camera-like input (the sample photos as new
frames at up to --camera-fps), interleaved round by round so a shared machine loads both alike:
- desktop: the window's loop (app/ui/session.py) without HighGUI: a turn, then key_wait_ms as the
  window waits for a key; its rate is pictures drawn per second.
- web: run_toolbox.py --web's server on 127.0.0.1 and a WebSocket client that acknowledges each
  frame as the page does; its rate is frames received per second.
Latency: the client presses o and u in turn and times each until the first frame whose layer list
shows the change, against the compute period (seconds per forward run as the compute thread
measures it).
"""
import argparse
import asyncio
import dataclasses
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.inputs import InputSource, default_input_dir, open_source  # noqa: E402
from bench.bench_app import frames as photos  # noqa: E402
from app.net import Net, heap  # noqa: E402
from app.settings import load_settings  # noqa: E402
from app.ui.app import App  # noqa: E402
from app.ui.session import LiveSession  # noqa: E402
from app.web.server import WebServer  # noqa: E402


class CameraLike(InputSource):
    """The sample photos in turn, each read a new frame with new pixel arrays (nothing computed for
    the last frame can be reused), at most ``fps`` a second."""

    is_camera = True
    is_live = True
    description = "camera-like photos"

    def __init__(self, frames: list, fps: float):
        super().__init__()
        self.frames, self.interval, self.count, self.last = frames, 1.0 / fps, 0, 0.0

    def read(self):
        if time.monotonic() - self.last < self.interval:
            return None
        self.last = time.monotonic()
        self.count += 1
        frame = self.frames[self.count % len(self.frames)]
        return dataclasses.replace(frame, images=tuple(image.copy() for image in frame.images), index=self.count)


def desktop_rate(net, settings, frames, fps: float, seconds: float) -> tuple:
    """(pictures drawn per second, seconds per compute job) of the window's loop without a window."""
    session = LiveSession(net, settings, CameraLike(frames, fps)).start()
    drawn = []
    try:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            if session.step() is not None:
                drawn.append(time.perf_counter())
            time.sleep(settings.key_wait_ms / 1000)
        return rate(drawn), session.compute.seconds_per_job
    finally:
        session.stop()


def rate(times: list) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


async def web_client(server, seconds: float, keys: int, control_box) -> tuple:
    """(frames received per second, key-to-new-frame latencies in seconds, seconds per compute job)."""
    import aiohttp

    received, latest = [], {}
    async with aiohttp.ClientSession() as session:
        socket = await session.ws_connect(f"http://127.0.0.1:{server.port}/ws?token={server.token}", max_msg_size=0)

        async def read():
            async for message in socket:
                if message.type == aiohttp.WSMsgType.BINARY and message.data[:1] == b"\x01":
                    received.append(time.perf_counter())
                    latest["data"] = message.data[1:]
                    await socket.send_json({"type": "shown"})

        reader = asyncio.create_task(read())
        while len(received) < 3:   # the first frames: the tab has started
            await asyncio.sleep(0.01)
        start, count = time.perf_counter(), len(received)
        await asyncio.sleep(seconds)
        frames = received[count:]
        latencies = []
        for index in range(keys):
            before, seen = control(latest["data"], control_box), len(received)
            sent = time.perf_counter()
            await socket.send_json({"type": "key", "key": "o" if index % 2 == 0 else "u"})
            while time.perf_counter() - sent < 5:
                await asyncio.sleep(0.001)
                if len(received) == seen:   # decode each frame once, as it comes
                    continue
                seen = len(received)
                if not np.array_equal(control(latest["data"], control_box), before):
                    latencies.append(received[-1] - sent)
                    break
            await asyncio.sleep(0.2)
        tab = next(iter(server.tabs.values()))
        period = tab.live.compute.seconds_per_job
        reader.cancel()
        await socket.close()
    assert time.perf_counter() - start >= seconds
    return rate(frames), latencies, period


def control(data: bytes, box) -> np.ndarray:
    top, left, height, width = box
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    return image[top:top + height, left:left + width] > 128   # the layer names, not JPEG noise


def main() -> None:
    heap.keep_freed_memory()  # as the app runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each side runs a round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keys", type=int, default=20, help="key presses timed")
    parser.add_argument("--camera-fps", type=float, default=30.0)
    args = parser.parse_args()
    settings = load_settings(provider="cpu")
    net = Net.load(args.model, provider="cpu")
    frames = photos(open_source(str(default_input_dir())), 8)
    rect = App(net, settings).rects["control"]
    box = (rect.top, rect.left, rect.height, rect.width)
    server = WebServer(net, settings, lambda: CameraLike(frames, args.camera_fps), port=0).start()
    load_before = os.getloadavg()[0]
    desktop, web, latencies, periods = [], [], [], []
    try:
        desktop_rate(net, settings, frames, args.camera_fps, min(args.seconds, 2.0))   # warm-up
        for _ in range(args.rounds):
            drawn, period = desktop_rate(net, settings, frames, args.camera_fps, args.seconds)
            desktop.append(drawn)
            periods.append(period)
            received, times, period = asyncio.run(web_client(server, args.seconds, args.keys, box))
            web.append(received)
            latencies += times
            periods.append(period)
    finally:
        server.stop()
    period = float(np.median(periods))
    print(f"model {net.spec.name} ({len(net.layers)} layers), {net.provider}, {os.cpu_count()} cores, camera-like "
          f"input at up to {args.camera_fps:g} fps, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}")
    for index, (drawn, received) in enumerate(zip(desktop, web)):
        print(f"round {index + 1}: desktop loop {drawn:.1f} frames/s drawn, browser {received:.1f} frames/s received "
              f"({received / drawn:.2f}x)" if drawn else f"round {index + 1}: no desktop frames")
    ratio = sum(web) / sum(desktop) if sum(desktop) else 0.0
    print(f"all rounds: {ratio:.2f}x the desktop loop's rate (goal >= 0.9x)")
    if latencies:
        median, p95 = np.median(latencies), np.percentile(latencies, 95)
        print(f"key to new frame ({len(latencies)} of {args.keys * args.rounds} keys seen): median {median * 1000:.0f} ms, "
              f"95th percentile {p95 * 1000:.0f} ms; compute period {period * 1000:.0f} ms: median "
              f"{median / period:.1f} periods (goal < 2)")


if __name__ == "__main__":
    main()
