"""The guards every request passes before the API sees it: Host and Origin, body limits.

A local server is still a server: while bound to a loopback address only loopback Host names are
answered (DNS rebinding), a POST from another origin is refused, and a body is refused from its
Content-Length before a byte of it is read; a chunked body is cut off as soon as it passes the limit.
The HTTP parser (httptools, in protocol.py) has already refused malformed lengths (``²``, ``1_1``,
``+11``, two Content-Length headers) with a 400; deadlines on slow clients are protocol.py's too.
Every refusal here is an ``ApiError`` (status, one-line message).
"""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import parse_qs

from starlette.requests import Request

from digitnet.serve.api import ApiError

MB = 1024 * 1024
DEFAULT_MAX_UPLOAD = 10 * MB
REQUEST_TIMEOUT = 10.0  # seconds a client may take to send a request's headers (and its body, plus MIN_RATE)
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


def check_host(request: Request) -> None:
    """403 unless the Host is a loopback name (called while the server is bound to loopback)."""
    if not is_loopback(host_name(request.headers.get("host", "localhost"))):
        raise ApiError(403, "this server answers only requests addressed to localhost")


def check_origin(request: Request) -> None:
    """A browser sends Origin with every POST; only the page's own origin may drive the model."""
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser (curl, scripts): nothing a web site could forge
    own = f"http://{request.headers.get('host', '')}"
    if origin.lower() != own.lower():
        raise ApiError(403, "cross-origin requests are refused: use the page this server serves")


def query_of(request: Request) -> dict[str, str]:
    """The query's parameters, the first value of each (blank values dropped)."""
    return {k: v[0] for k, v in parse_qs(request.url.query).items()}


def declared_length(request: Request) -> int | None:
    """The Content-Length, already checked by the parser (digits only, one header); None if absent."""
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:  # the parser refuses these first; kept so this function never raises ValueError
        raise ApiError(400, f"invalid Content-Length {value[:40]!r}") from None


def body_is_unread(request: Request) -> bool:
    """Whether a request came with a body this server has not read (its connection must then close,
    so that the rest is not taken for the next request and an `Expect: 100-continue` client stops)."""
    if getattr(request, "_body", None) is not None:  # read whole (read_body, Request.body)
        return False
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    return chunked or (declared_length(request) or 0) > 0


def _too_big(limit: int, length: int | None, upload: bool) -> ApiError:
    if not upload:
        return ApiError(413, f"the request body is over {limit // 1024} KB")
    if length is None:  # a chunked upload, cut off at the limit
        return ApiError(413, f"the upload is over the limit of {limit / MB:g} MB (--max-upload)")
    return ApiError(413, f"the upload is {length / MB:.1f} MB; the limit is {limit / MB:g} MB (--max-upload)")


async def read_body(request: Request, limit: int, allow_empty: bool = False, upload: bool = True) -> bytes:
    """The request body, at most ``limit`` bytes: 413 from its Content-Length before any of it is
    read, or as soon as a chunked body passes the limit; 411 without either (unless ``allow_empty``);
    400 when the client ends it short of its Content-Length.  ``upload``: the limit is --max-upload's."""
    length = declared_length(request)
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    if length is None and not chunked:
        if allow_empty:
            return b""
        raise ApiError(411, "a Content-Length header is required (or a chunked body)")
    if length is not None and length > limit:
        raise _too_big(limit, length, upload)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_big(limit, None, upload)
    if length is not None and len(body) < length:
        raise ApiError(400, f"the body ended after {len(body)} of the {length} bytes its Content-Length promised")
    request._body = bytes(body)  # Starlette's own cache: read, so the connection may be kept alive
    return request._body


async def skip_body(request: Request) -> None:
    """The body of a route that takes none (the page sends ``{}``): read and dropped, at most
    MAX_JSON_BODY, so the connection can carry the next request."""
    await read_body(request, MAX_JSON_BODY, allow_empty=True, upload=False)


async def read_json(request: Request) -> dict:
    """A small JSON object body (settings, a model id); 413 over MAX_JSON_BODY, 400 if not a JSON object.
    Nesting deeper than the interpreter's recursion limit is refused as not JSON (RecursionError)."""
    body = await read_body(request, MAX_JSON_BODY, allow_empty=True, upload=False)
    try:
        value = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        raise ApiError(400, "the body is not JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "the body must be a JSON object")
    return value
