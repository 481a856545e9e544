"""A web server on 127.0.0.1 (a free port) over the mnist net, and a WebSocket client that reads it
as the page does (acknowledging each frame), for the web app's tests."""
import asyncio
import json
import threading
from pathlib import Path

import aiohttp
import cv2
import numpy as np

from tests import ui_support

FRAME_LIMIT = 200_000   # web_frame_max_bytes in the tests: an oversized frame stays cheap to send


def start_server(folder: Path, **overrides):
    from app.inputs import open_source
    from app.web.server import WebServer

    settings = ui_support.settings(model_input=ui_support.MNIST_INPUT, web_frame_max_bytes=FRAME_LIMIT,
                                   save_view_dir=str(folder / "views"), **overrides)
    images = ui_support.write_images(folder / "digits", 3)
    return WebServer(ui_support.mnist_net(), settings, lambda: open_source(str(images), settings), port=0).start()


def resident_bytes() -> int:
    """This process's resident memory."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def contrast(image: np.ndarray) -> float:
    """The 1st-99th percentile spread of the gray levels."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    low, high = np.percentile(gray, (1, 99))
    return float(high - low)


class Client:
    """One socket to the server: counts frames (acknowledging each, as the page does), keeps the text
    messages and the newest picture."""

    def __init__(self, server, acknowledge: bool = True):
        self.server, self.acknowledge = server, acknowledge
        self.frames, self.messages, self.picture = 0, [], None
        self.frame_times = []

    async def __aenter__(self):
        self.session = aiohttp.ClientSession()
        self.socket = await self.session.ws_connect(
            f"http://127.0.0.1:{self.server.port}/ws?token={self.server.token}", max_msg_size=0)
        self.reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self):
        self.reader.cancel()
        await self.socket.close()
        await self.session.close()

    async def _read(self):
        loop = asyncio.get_running_loop()
        async for message in self.socket:
            if message.type == aiohttp.WSMsgType.BINARY and message.data[:1] == b"\x01":
                self.frames += 1
                self.frame_times.append(loop.time())
                self.picture = message.data[1:]
                if self.acknowledge:
                    await self.socket.send_json({"type": "shown"})
            elif message.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(message.data))

    def errors(self) -> list:
        return [message["message"] for message in self.messages if message["type"] == "error"]

    def image(self) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(self.picture, np.uint8), cv2.IMREAD_COLOR)

    async def wait(self, condition, seconds: float = 20.0):
        """Until ``condition()`` holds (AssertionError after ``seconds``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not condition():
            if loop.time() > deadline:
                raise AssertionError(f"not within {seconds} s; messages: {self.messages[-5:]}")
            await asyncio.sleep(0.02)

    async def key(self, key: str):
        await self.socket.send_json({"type": "key", "key": key})


def web_threads() -> set:
    """The threads a server's tabs run (the server's own thread excluded)."""
    return {thread for thread in threading.enumerate() if thread.name != "web-server"}
