"""The web server (aiohttp): the page, its script, one WebSocket per tab, and uploads, all behind the token.

    server = WebServer(net, settings, open_input, host="127.0.0.1", port=8600)
    server.run()            # prints the URL line, serves until Ctrl-C (SIGINT) or SIGTERM
    # or, in a thread (tests): server.start(); ...server.url...; server.stop()

Every request needs ?token=... (compared in constant time); without it the answer is 403 with an
empty body, whatever the path. The files served are the ones shipped in app/web/static, read once
at start and looked up by name, and the files of the atlas site (settings' atlas_dir) under
/atlas/TOKEN/...: the token is in the path there, so that the site's relative links carry it.

Socket messages from the page: text JSON {"type": "key", "key": KeyboardEvent.key},
{"type": "click", "x": X, "y": Y} (picture pixels), {"type": "shown"} (the last frame is drawn);
binary: a JPEG frame of the browser's camera. To the page: binary frames (app/web/tab.py: FRAME,
DOWNLOAD) and text JSON hello / error / camera / camera_ack / download / open (a page to open in a
new tab) / ended.
"""
import asyncio
import hmac
import ipaddress
import json
import secrets
import signal
import sys
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

from aiohttp import WSCloseCode, WSMsgType, web

from app.atlas.site import site_folder
from app.errors import DeepVisError
from app.web import uploads
from app.web.tab import WebTab

STATIC = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
SOCKET_SLACK = 2   # a socket message up to this many times web_frame_max_bytes is read and refused;
                   # a larger one closes that socket (code 1009, message too big)
START_SECONDS = 30.0


def log(line: str) -> None:
    """One line on stderr: what a client did wrong, and the server's own events."""
    print(f"web: {line}", file=sys.stderr, flush=True)


def wake_up(loop, event: asyncio.Event) -> None:
    """Set ``event`` from another thread (nothing once the server's loop has ended)."""
    try:
        loop.call_soon_threadsafe(event.set)
    except RuntimeError:   # the loop is closed: the server stopped
        pass


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebServer:
    """The app for every browser tab that connects; ``open_input()`` opens a tab's input source."""

    def __init__(self, net, settings, open_input: Callable, host: str = "127.0.0.1", port: int = 8600,
                 token: Optional[str] = None):
        self.net, self.settings, self.open_input = net, settings, open_input
        self.host, self.port = host, port
        self.token = token or secrets.token_urlsafe(24)
        self.tabs = {}                 # tab id -> WebTab
        self.sockets = set()           # open WebSockets (closed when the server stops)
        self.running = weakref.WeakSet()   # every tab whose threads may still run
        self.files = {path.name: path.read_bytes() for path in STATIC.iterdir() if path.is_file()}
        self.atlas_folder = site_folder(settings.atlas_dir, net.spec.name)
        self.uploads = uploads.UploadFolder()
        self._decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="web-uploads")
        self._loop = self._stopping = None
        self._thread = None
        self._ready = threading.Event()
        self._failure = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?token={self.token}"

    # --- running ---

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM; prints the URL line (and a warning line for a host other
        than this machine's loopback)."""
        asyncio.run(self._serve(self._announce, signals=True))

    def start(self) -> "WebServer":
        """Serve in a background thread; returns once listening (DeepVisError if it cannot)."""
        self._thread = threading.Thread(target=self._serve_in_thread, name="web-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_SECONDS) or self._failure is not None:
            raise DeepVisError(f"web server on {self.host}:{self.port}: {self._failure or 'did not start'}")
        return self

    def _serve_in_thread(self) -> None:
        try:
            asyncio.run(self._serve(self._ready.set))
        except DeepVisError:   # cannot listen: start() raises it from self._failure
            pass

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _announce(self) -> None:
        if not is_loopback(self.host):
            print(f"warning: --host {self.host} serves this app to every network the machine is on: anyone who "
                  f"reaches port {self.port} with the token drives it (safer: the default 127.0.0.1 and an SSH "
                  "tunnel, see README's Remote machines)", flush=True)
        print(f"open {self.url}  (Ctrl-C stops the server)", flush=True)

    async def _serve(self, on_ready: Callable[[], None], signals: bool = False) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        runner = web.AppRunner(self._application(), handle_signals=False, access_log=None)
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.port)
            try:
                await site.start()
            except OSError as error:
                self._failure = f"cannot listen ({error.strerror or error})"
                self._ready.set()
                raise DeepVisError(f"--web: {self.host}:{self.port}: cannot listen "
                                   f"({error.strerror or error}; try another --port)") from None
            self.port = runner.addresses[0][1]
            if signals:
                for number in (signal.SIGINT, signal.SIGTERM):
                    self._loop.add_signal_handler(number, self._stopping.set)
            on_ready()
            await self._stopping.wait()
        finally:
            await runner.cleanup()
            for tab in list(self.running):   # the tabs still open, and those whose loop is still ending
                tab.close()
            for tab in list(self.running):
                tab.join()
            self._decoder.shutdown(wait=True)
            self.uploads.close()

    def _application(self) -> web.Application:
        app = web.Application(middlewares=[self._token_check])
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/ws", self._socket)
        app.router.add_post("/upload", self._upload)
        app.router.add_get("/atlas/{token}/{path:.*}", self._atlas)
        app.on_shutdown.append(self._close_sockets)
        return app

    # --- requests ---

    @web.middleware
    async def _token_check(self, request, handler):
        given = request.match_info.get("token", request.query.get("token", "")).encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self.token.encode()):
            return web.Response(status=403)
        response = await handler(request)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def _page(self, request):
        return self._file("index.html")

    async def _static(self, request):
        return self._file(request.match_info["name"])

    def _file(self, name: str):
        if name not in self.files:
            raise web.HTTPNotFound()
        return web.Response(body=self.files[name], content_type=CONTENT_TYPES.get(Path(name).suffix,
                                                                                   "application/octet-stream"))

    async def _atlas(self, request):
        """A file of the atlas site; names with an empty, "." or ".." part are refused (a link the
        site's own --link made may lead to the units folder: the site's choice, not the request's)."""
        parts = request.match_info["path"].split("/") if request.match_info["path"] else ["index.html"]
        if any(part in ("", ".", "..") or "\\" in part or "\x00" in part for part in parts):
            raise web.HTTPNotFound()
        path = self.atlas_folder.joinpath(*parts)
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    async def _upload(self, request):
        """POST /upload?token=T&tab=ID&name=NAME, the image file as the body: it joins that tab's file list."""
        tab = self.tabs.get(request.query.get("tab", ""))
        if tab is None:
            return web.json_response({"error": "upload: no such tab (reload the page)"}, status=404)
        limit = self.settings.web_upload_max_bytes
        name = "".join(character for character in request.query.get("name", "upload") if character.isprintable())[:200]
        too_big = (request.content_length or 0) > limit
        data = bytearray()
        while not too_big:   # never more than limit + 1 bytes held
            chunk = await request.content.read(limit + 1 - len(data))
            if not chunk:
                break
            data += chunk
            too_big = len(data) > limit
        try:
            if too_big:
                raise DeepVisError(f"{name}: more than the limit of {limit} bytes (settings: web_upload_max_bytes)")
            image = await asyncio.get_running_loop().run_in_executor(
                self._decoder, uploads.decode, bytes(data), name, limit)
        except DeepVisError as error:
            log(f"upload refused: {error}")
            tab.error(str(error))
            return web.json_response({"error": str(error)}, status=413 if too_big else 400)
        tab.upload(self.uploads.store(image), name)
        return web.json_response({"ok": True})

    async def _socket(self, request):
        limit = self.settings.web_frame_max_bytes
        # no per-message deflate: the pictures are JPEG already (it cost CPU and a thread for nothing)
        socket = web.WebSocketResponse(max_msg_size=SOCKET_SLACK * limit, compress=False)
        await socket.prepare(request)
        self.sockets.add(socket)
        loop, wake = asyncio.get_running_loop(), asyncio.Event()
        try:
            source = self.open_input()
        except DeepVisError as error:
            await socket.send_json({"type": "error", "message": str(error)})
            await socket.close()
            self.sockets.discard(socket)
            return socket
        tab_id = secrets.token_urlsafe(12)
        tab = WebTab(self.net, self.settings, source, lambda: wake_up(loop, wake), atlas_link=f"atlas/{self.token}/")
        self.tabs[tab_id] = tab
        self.running.add(tab)
        await socket.send_json({"type": "hello", "tab": tab_id, "model": self.net.spec.name})
        tab.start()
        sender = asyncio.create_task(self._send(socket, tab, wake))
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    self._on_text(tab, tab_id, message.data)
                elif message.type == WSMsgType.BINARY:
                    if len(message.data) > limit:
                        self._refuse(tab, tab_id, f"camera frame: {len(message.data)} bytes, more than the limit of "
                                                  f"{limit} (settings: web_frame_max_bytes)")
                    else:
                        tab.camera_frame(message.data)
                elif message.type == WSMsgType.ERROR:
                    log(f"tab {tab_id}: socket closed: {socket.exception()}")
        finally:
            sender.cancel()
            self.sockets.discard(socket)
            self.tabs.pop(tab_id, None)
            tab.close()
        return socket

    def _on_text(self, tab: WebTab, tab_id: str, text: str) -> None:
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):   # RecursionError: nested deeper than Python's stack
            self._refuse(tab, tab_id, f"not JSON: {text[:60]!r}")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        try:
            if kind == "key":
                tab.press(message.get("key"))
            elif kind == "click":
                tab.click(message.get("x"), message.get("y"))
            elif kind == "shown":
                tab.acknowledge()
            else:
                raise DeepVisError(f"unknown message type {str(kind)[:40]!r} (key, click or shown)")
        except DeepVisError as error:
            self._refuse(tab, tab_id, str(error))

    @staticmethod
    def _refuse(tab: WebTab, tab_id: str, why: str) -> None:
        log(f"tab {tab_id}: {why}")
        tab.error(why)

    @staticmethod
    async def _send(socket, tab: WebTab, wake: asyncio.Event) -> None:
        while not socket.closed:
            await wake.wait()
            wake.clear()
            ended = tab.ended   # read before outgoing(): once ended, the last message is among these
            for message in tab.outgoing():
                if isinstance(message, str):
                    await socket.send_str(message)
                else:
                    await socket.send_bytes(message)
            if ended:
                await socket.close()

    async def _close_sockets(self, app) -> None:
        for socket in list(self.sockets):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")
