"""Downloads: resumed with HTTP Range from a local server, checked by digest, file:// URLs, and one
clear line when the server cannot be reached."""
import hashlib
import http.server
import socket
import threading

import pytest

from app.errors import DeepVisError
from app.fetch import fetch, fetch_model_files, model_files_dir

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
SHA1 = hashlib.sha1(PAYLOAD).hexdigest()


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at any path, honouring `Range: bytes=N-`; records the ranges asked for."""

    ranges = []

    def do_GET(self):
        asked = self.headers.get("Range")
        type(self).ranges.append(asked)
        start = int(asked.split("=")[1].rstrip("-")) if asked else 0
        self.send_response(206 if asked else 200)
        self.send_header("Content-Length", str(len(PAYLOAD) - start))
        self.end_headers()
        self.wfile.write(PAYLOAD[start:])

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_resumes_after_a_partial_file(server, tmp_path):
    target = tmp_path / "weights.caffemodel"
    (tmp_path / "weights.caffemodel.part").write_bytes(PAYLOAD[:300_000])
    RangeHandler.ranges.clear()
    assert fetch(f"{server}/w", target, sha256=SHA256) == target
    assert target.read_bytes() == PAYLOAD and not (tmp_path / "weights.caffemodel.part").exists()
    assert RangeHandler.ranges == ["bytes=300000-"]
    fetch(f"{server}/w", target, sha256=SHA256)  # already there: no request
    assert RangeHandler.ranges == ["bytes=300000-"]


def test_checksum_mismatch_removes_the_download(server, tmp_path):
    target = tmp_path / "w.bin"
    with pytest.raises(DeepVisError) as caught:
        fetch(f"{server}/w", target, sha1="0" * 40)
    assert "sha1" in str(caught.value) and SHA1 in str(caught.value) and "\n" not in str(caught.value)
    assert not target.exists() and not (tmp_path / "w.bin.part").exists()


def test_file_url_and_model_files_go_to_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    (path,) = fetch_model_files("some-net", [{"name": "w.caffemodel", "url": source.as_uri(), "sha1": SHA1}])
    assert path == model_files_dir("some-net") / "w.caffemodel" and path.read_bytes() == PAYLOAD


def test_unreachable_server_is_one_line(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DeepVisError) as caught:
        fetch(f"http://127.0.0.1:{port}/w", tmp_path / "w", sha256=SHA256)
    message = str(caught.value)
    assert "offline" in message and "\n" not in message


def test_a_digest_is_required(tmp_path):
    with pytest.raises(DeepVisError, match="no sha256, sha1 or git_blob"):
        fetch("file:///nowhere", tmp_path / "w")
