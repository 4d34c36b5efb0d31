"""Downloader against a local HTTP server with Range support: full download, resume, checksum failure, offline."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from disco.data.checksum import sidecar_path
from disco.data.download import download
from disco.errors import DataError

PAYLOAD = bytes(range(256)) * 400  # 100 kB
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        header = self.headers.get("Range")
        type(self).requests.append(header)
        start = int(header.split("=")[1].rstrip("-")) if header else 0
        body = PAYLOAD[start:]
        self.send_response(206 if header else 200)
        if header:
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    _RangeHandler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/file.bin"
    httpd.shutdown()
    httpd.server_close()


def test_full_download(tmp_path: Path, server: str) -> None:
    out = download(server, tmp_path / "f.bin", MD5)
    assert out.read_bytes() == PAYLOAD and not (tmp_path / "f.bin.part").exists()
    assert sidecar_path(out).exists() and _RangeHandler.requests == [None]


def test_resume_of_partial_file(tmp_path: Path, server: str) -> None:
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:30000])
    out = download(server, tmp_path / "f.bin", MD5)
    assert out.read_bytes() == PAYLOAD
    assert _RangeHandler.requests == ["bytes=30000-"]


def test_checksum_failure_leaves_no_file(tmp_path: Path, server: str) -> None:
    with pytest.raises(DataError, match=r"expected 0{32}"):
        download(server, tmp_path / "f.bin", "0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_offline_fails_fast_with_replica_hint(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(DataError) as err:
        download(f"http://127.0.0.1:{port}/x.npz", tmp_path / "x.npz", MD5, timeout=2.0, name="dsprites")
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert "\n" not in message and "disco data make dsprites --out" in message
    assert list(tmp_path.iterdir()) == []
