"""The web server without a browser: the token on every path, traversal, per-tab threads and memory,
misbehaving clients, uploads, Ctrl-C (the browser itself: tests/test_web_browser.py)."""
import asyncio
import http.client
import json
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.errors import DeepVisError
from app.web.browser_keys import key_code
from app.web.tab import FRAMES_IN_FLIGHT
from tests import ui_support, web_support
from tests.web_support import Client

ROOT = Path(__file__).resolve().parents[1]
PATHS = ("/", "/static/app.js", "/static/index.html", "/ws", "/upload", "/nothing", "/../../etc/passwd",
         "/static/..%2F..%2Fetc%2Fpasswd", "/static/%2e%2e/%2e%2e/etc/passwd", "/%2e%2e/%2e%2e/etc/passwd")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = web_support.start_server(tmp_path_factory.mktemp("web"))
    yield server
    server.stop()


def raw_get(server, path: str, method: str = "GET", body=None):
    """(status, body) of a request sent with ``path`` exactly as written (no client-side normalizing)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("token", [None, "wrong", "x" * 200])
def test_every_path_needs_the_token(server, token):
    for path in PATHS:
        for method in ("GET", "POST"):
            address = path + ("" if token is None else f"?token={token}")
            status, body = raw_get(server, address, method, b"\x89PNG" if method == "POST" else None)
            assert (status, body) == (403, b""), (method, address)


def test_the_socket_needs_the_token(server):
    import aiohttp

    async def connect(token):
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"http://127.0.0.1:{server.port}/ws?token={token}")
            return refused.value.status

    assert asyncio.run(connect("")) == asyncio.run(connect(server.token[:-1] + "!")) == 403


def test_traversal_with_the_token_reaches_no_file(server):
    for path in PATHS[6:] + ("/static/../settings.py", "/static/%2e%2e%2fserver.py", "/static/server.py"):
        status, body = raw_get(server, f"{path}?token={server.token}")
        assert status in (403, 404), path
        assert b"root:" not in body and b"import" not in body, path
    status, body = raw_get(server, f"/static/app.js?token={server.token}")
    assert status == 200 and b"WebSocket" in body


def test_the_url_line_and_the_warning_for_every_network(capsys):
    from app.web.server import WebServer

    WebServer(ui_support.mnist_net(), ui_support.settings(), lambda: None, "0.0.0.0", 8600, "t0k")._announce()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("warning: --host 0.0.0.0 serves")
    assert lines[1].startswith("open http://0.0.0.0:8600/?token=t0k")
    WebServer(ui_support.mnist_net(), ui_support.settings(), lambda: None, "127.0.0.1", 8600, "t0k")._announce()
    assert capsys.readouterr().out.startswith("open http://127.0.0.1:8600/?token=t0k")


def test_every_key_of_the_key_table_has_a_browser_name():
    from app.ui import keys
    from app.web.browser_keys import NAMED

    browser_name = {table_name: name for name, table_name in NAMED.items()}
    for action, bound, _ in keys.KEY_TABLE:
        for key in bound.split():
            assert keys.action_for(key_code(browser_name.get(key, key))) == action, key
    for table_name, action in keys.ENTRY_KEYS.items():   # the go-to-class entry's keys
        assert keys.action_for(key_code(browser_name[table_name]), typing=True) == action


def test_browser_key_names():
    assert key_code("ArrowLeft") == 65361 and key_code("PageDown") == 65366 and key_code("Escape") == 27
    assert key_code("o") == ord("o") and key_code("B") == ord("B") and key_code("Backspace") == 8
    for bad in ("Hyper", "", None, 7, "ArrowLeftArrowLeft"):
        with pytest.raises(DeepVisError):
            key_code(bad)


def test_two_tabs_one_closed_midstream_and_everything_returns(server):
    async def scenario():
        async with Client(server) as warm:   # the first tab warms caches once
            await warm.wait(lambda: warm.frames >= 2)
        await asyncio.sleep(0.5)
        threads, memory = web_support.web_threads(), web_support.resident_bytes()
        first, second = Client(server), Client(server)
        await first.__aenter__()
        await second.__aenter__()
        await first.wait(lambda: first.frames >= 2 and second.frames >= 2)
        assert len(server.tabs) == 2 and len(web_support.web_threads()) > len(threads)
        await first.close()   # closed while frames flow
        count = second.frames
        for key in "oooo":
            await second.key(key)
            await asyncio.sleep(0.2)
        await second.wait(lambda: second.frames >= count + 3, 10)
        await second.close()
        return threads, memory

    threads, memory = asyncio.run(scenario())
    deadline = time.monotonic() + 10
    while (web_support.web_threads() - threads or server.tabs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not server.tabs
    assert not {thread.name for thread in web_support.web_threads() - threads}
    assert web_support.resident_bytes() - memory < 40e6


def test_a_flood_of_keys_and_oversized_frames_leaves_others_served(server):
    async def scenario():
        async with Client(server) as victim, Client(server) as flood:
            await victim.wait(lambda: victim.frames >= 2 and flood.frames >= 1)
            memory = web_support.resident_bytes()
            oversized = bytes(web_support.FRAME_LIMIT + 1000)
            for index in range(1000):
                await flood.socket.send_str(json.dumps({"type": "key", "key": "o" if index % 2 else "u"}))
            for _ in range(200):
                await flood.socket.send_bytes(oversized)
            await flood.wait(lambda: sum("more than the limit" in error for error in flood.errors()) >= 20)
            count = victim.frames
            await victim.key("b")
            await victim.wait(lambda: victim.frames >= count + 2, 10)
            grown = web_support.resident_bytes() - memory
            return grown, flood.errors()

    grown, errors = asyncio.run(scenario())
    assert grown < 150e6
    assert any("camera frame" in error and "web_frame_max_bytes" in error for error in errors)
    status, body = raw_get(server, f"/static/app.js?token={server.token}")
    assert status == 200


def test_bad_messages_get_an_error_message(server):
    async def scenario():
        async with Client(server) as client:
            await client.wait(lambda: client.frames >= 1)
            await client.socket.send_str("{not json")
            await client.socket.send_str(json.dumps({"type": "key", "key": "Hyper"}))
            await client.socket.send_str(json.dumps({"type": "click", "x": "1", "y": 2}))
            await client.socket.send_str(json.dumps({"type": "launch"}))
            await client.socket.send_str(json.dumps([1, 2]))
            await client.socket.send_str("[" * 100_000)   # deeper than Python's stack
            await client.key("C")   # the browser's camera: the next binary messages are its frames
            await client.wait(lambda: {"type": "camera", "on": True} in client.messages)
            await client.socket.send_bytes(b"this is not an image")
            await client.wait(lambda: len(client.errors()) >= 7)
            count = client.frames
            await client.key("o")
            await client.wait(lambda: client.frames > count)
            return client.errors()

    errors = asyncio.run(scenario())
    assert sum(error.startswith("not JSON") for error in errors) == 2
    assert any("'Hyper': unknown key name" in error for error in errors)
    assert any(error.startswith("click: x and y must be whole numbers") for error in errors)
    assert any("unknown message type 'launch'" in error for error in errors)
    assert any("camera frame: cannot decode" in error for error in errors)


def png_bytes(image) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels (its CRC fixed up)."""
    data = bytearray(png_bytes(np.zeros((8, 8), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_uploads_join_the_file_list_within_the_limits(server):
    async def scenario():
        import aiohttp

        async with Client(server) as client:
            await client.wait(lambda: client.frames >= 1 and client.messages)
            tab = client.messages[0]["tab"]
            red = np.zeros((64, 64, 3), np.uint8)
            red[..., 2] = 255
            answers = []
            async with aiohttp.ClientSession() as session:
                for name, body in (("red.png", png_bytes(red)), ("../../evil.png", b"GIF89a not really"),
                                   ("huge.png", png_claiming(40_000, 40_000)),
                                   ("big.bin", bytes(server.settings.web_upload_max_bytes + 1))):
                    async with session.post(f"http://127.0.0.1:{server.port}/upload",
                                            params={"token": server.token, "tab": tab, "name": name},
                                            data=body) as response:
                        answers.append((response.status, await response.json()))
            await client.wait(lambda: "(uploaded)" in server.tabs[tab].live.inputs.latest().name)
            return answers, server.tabs[tab].live.inputs.latest()

    answers, frame = asyncio.run(scenario())
    assert answers[0] == (200, {"ok": True})
    assert answers[1][0] == 400 and ": cannot decode" in answers[1][1]["error"]
    assert answers[2][0] == 400 and "image_max_pixels" in answers[2][1]["error"]
    assert answers[3][0] == 413 and "web_upload_max_bytes" in answers[3][1]["error"]
    assert frame.name == "red.png (uploaded)" and frame.count == 4 and frame.image[..., 2].min() == 255
    assert sorted(path.name for path in server.uploads.path.iterdir()) == ["upload-1.png"]


def test_ctrl_c_stops_the_server_with_exit_0(tmp_path):
    folder = ui_support.write_images(tmp_path / "digits", 2)
    settings = tmp_path / "settings.py"
    settings.write_text(f"model_input = {ui_support.MNIST_INPUT!r}\n")
    process = subprocess.Popen([sys.executable, str(ROOT / "run_toolbox.py"), "--web", "--port", "0", "--model",
                                str(ui_support.MNIST), "--input", str(folder), "--cpu", "--settings", str(settings),
                                "--token", "secret"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("open http://127.0.0.1:") and line.split()[1].endswith("/?token=secret"), line
        port = int(line.split()[1].split(":")[2].split("/")[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/?token=secret")
        assert connection.getresponse().status == 200

        async def interrupt_a_tab():
            import aiohttp

            async with aiohttp.ClientSession() as session:
                socket = await session.ws_connect(f"http://127.0.0.1:{port}/ws?token=secret", max_msg_size=0)
                frame = await socket.receive(20)
                while frame.type != aiohttp.WSMsgType.BINARY:
                    frame = await socket.receive(20)
                process.send_signal(signal.SIGINT)
                while (await socket.receive(10)).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    pass   # frames sent before the server stopped
                return socket.close_code

        assert asyncio.run(interrupt_a_tab()) == 1001   # going away: the server closed the tab's socket
        assert process.wait(10) == 0, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()


def test_two_frames_in_flight_until_the_browser_acknowledges_them(server):
    async def scenario():
        async with Client(server, acknowledge=False) as client:
            await client.wait(lambda: client.frames == 1)
            for key in "oooo":   # new pictures: one more is sent, then none while two are unacknowledged
                await client.key(key)
                await asyncio.sleep(0.3)
            held = client.frames
            tab = next(iter(server.tabs.values()))
            for _ in range(3):
                count = client.frames
                await client.socket.send_json({"type": "shown"})
                await client.wait(lambda: client.frames == count + 1, 5)
            await asyncio.sleep(0.3)
            return held, tab.received_rate(), tab.live.state.layer

    held, rate, layer = asyncio.run(scenario())
    assert held == FRAMES_IN_FLIGHT == 2 and layer == 4
    assert rate > 0   # the status line's fps: frames this client acknowledged per second


def test_the_shared_loop_without_a_display(tmp_path):
    """The window and every tab drive app/ui/session.py: a picture when something changed, keys through the
    key table, actions a display carries out its own way; in the window, C says what it is for."""
    from app.inputs import open_source
    from app.ui.session import LiveSession

    settings = ui_support.settings(model_input=ui_support.MNIST_INPUT)
    session = LiveSession(ui_support.mnist_net(), settings,
                          open_source(str(ui_support.write_images(tmp_path / "digits", 2)), settings)).start()
    try:
        deadline = time.monotonic() + 20
        while session.snapshot is None and time.monotonic() < deadline:
            session.step()
            time.sleep(0.01)
        session.step()   # draws the snapshot, if the loop above has not
        assert session.shown is not None and web_support.contrast(session.shown) > 100
        assert session.step() is None   # nothing changed since
        session.key(ord("o"))
        assert session.state.layer == 1 and session.step() is not None
        session.key(ord("C"))
        assert "run_toolbox.py --web" in session.app.message
        saved = []
        session.handlers["save_view"] = lambda: saved.append(session.shown)
        session.key(ord("W"))
        assert saved and saved[0] is session.shown
    finally:
        session.stop()
    assert not any(worker.running for worker in session.workers)


def test_q_ends_the_app_in_that_tab_only(server):
    async def scenario():
        async with Client(server) as leaving, Client(server) as staying:
            await leaving.wait(lambda: leaving.frames >= 1 and staying.frames >= 1)
            await leaving.key("q")
            await leaving.wait(lambda: leaving.socket.closed)
            count = staying.frames
            await staying.key("o")
            await staying.wait(lambda: staying.frames > count)
            return leaving.messages[-1]

    assert asyncio.run(scenario())["type"] == "ended"


def test_a_port_in_use_is_one_line(tmp_path):
    import socket

    from app.web.server import WebServer

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = WebServer(ui_support.mnist_net(), ui_support.settings(), lambda: None, port=port)
        with pytest.raises(DeepVisError, match=f"127.0.0.1:{port}: cannot listen .*address already in use"):
            server.start()
        server.stop()
