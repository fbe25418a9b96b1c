"""The guards every request passes before the API sees it: Host and Origin, body limits, deadlines.

A local server is still a server: while bound to a loopback address only loopback Host names are
answered (DNS rebinding), a POST from another origin is refused, and a body is refused from its
Content-Length before a byte of it is read, then read against a deadline.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import socket
import time
from urllib.parse import parse_qs, urlsplit

from digitnet.serve.api import ApiError

MB = 1024 * 1024
DEFAULT_MAX_UPLOAD = 10 * MB
REQUEST_TIMEOUT = 10.0  # seconds a client may take to send each part of a request
MAX_JSON_BODY = 64 * 1024  # settings and model choices are small: refuse anything larger before reading
LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost", "ip6-loopback"}


def is_loopback(host: str) -> bool:
    """True for localhost names and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name part of a Host header: 'localhost:8000' -> 'localhost', '[::1]:80' -> '::1'."""
    header = header.strip()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class GuardedHandler(http.server.BaseHTTPRequestHandler):
    """The reading side of a request: query, JSON and upload bodies, each within its limits.
    ``max_upload`` and ``timeout`` are set per server by ``server.make_server``."""

    timeout = REQUEST_TIMEOUT      # StreamRequestHandler puts this on the socket
    max_upload: int = DEFAULT_MAX_UPLOAD

    def _query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def _read_json(self) -> dict:
        """A small JSON object body (settings, a model id); 413 over MAX_JSON_BODY, 400 if not JSON."""
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length) > MAX_JSON_BODY:
            self.close_connection = True
            raise ApiError(413, f"the request body is over {MAX_JSON_BODY // 1024} KB")
        body = self._read_body(allow_empty=True)
        try:
            value = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "the body is not JSON") from None
        if not isinstance(value, dict):
            raise ApiError(400, "the body must be a JSON object")
        return value

    def _check_origin(self) -> None:
        """A browser sends Origin with every POST; only the page's own origin may drive the model."""
        origin = self.headers.get("Origin")
        if origin is None:
            return  # not a browser (curl, scripts): nothing a web site could forge
        own = f"http://{self.headers.get('Host', '')}"
        if origin.lower() != own.lower():
            raise ApiError(403, "cross-origin requests are refused: use the page this server serves")

    def handle_expect_100(self) -> bool:
        """`Expect: 100-continue` (curl sends it above 1 MB): refuse an oversized upload before the
        client starts sending it, rather than inviting it to continue."""
        try:
            too_big = int(self.headers.get("Content-Length", "0")) > self.max_upload
        except ValueError:
            too_big = False
        if too_big:
            self.close_connection = True
            self._send_json(413, {"error": f"the upload is over the limit of {self.max_upload / MB:g} MB "
                                           "(--max-upload)"})
            return False
        return super().handle_expect_100()

    def _read_body(self, allow_empty: bool = False) -> bytes:
        """The request body, refused (413) from its Content-Length before any of it is read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise ApiError(411, "send the body with a Content-Length (chunked uploads are not accepted)")
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            if allow_empty:
                return b""
            self.close_connection = True
            raise ApiError(411, "a Content-Length header is required")
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise ApiError(400, f"invalid Content-Length {length_header[:40]!r}") from None
        if length > self.max_upload:
            self.close_connection = True  # the unread body must not be taken for the next request
            raise ApiError(413, f"the upload is {length / MB:.1f} MB; the limit is "
                                f"{self.max_upload / MB:g} MB (--max-upload)")
        body = self._read_exactly(length)
        self._body_read = True
        if len(body) < length:
            self.close_connection = True
            raise ApiError(400, f"the body ended after {len(body)} of the {length} bytes its Content-Length promised")
        return body

    def _read_exactly(self, length: int) -> bytes:
        """Up to ``length`` bytes (fewer when the client closes first).  A stall longer than the
        socket timeout raises socket.timeout; a client trickling bytes just fast enough to dodge it
        runs into an overall deadline of the timeout plus a second per 64 KiB."""
        deadline = time.monotonic() + self.timeout + length / 65536
        chunks, received = [], 0
        while received < length:
            if time.monotonic() > deadline:
                raise socket.timeout("the body arrived too slowly")
            chunk = self.rfile.read1(min(65536, length - received))
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
        return b"".join(chunks)
