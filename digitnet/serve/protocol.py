"""The HTTP connection: uvicorn's httptools protocol with the deadlines and limits it lacks.

httptools (llhttp, Node's parser) parses requests and refuses malformed ones: ``Content-Length: ²``,
``1_1``, ``+11`` and a duplicated Content-Length are 400s, and a GET's body is read as its body,
never as a second request.  uvicorn keeps connections alive and closes them after KEEPALIVE idle
seconds, but bounds neither a request's header size nor the time a client takes to send it.  So:

- a connection that sends nothing is closed after the keep-alive timeout, like an idle keep-alive one;
- from a request's first byte, its headers and body must arrive within ``request_timeout`` seconds
  plus a second per MIN_RATE bytes of declared body, or the connection is closed (a client trickling
  a header byte every few seconds holds a socket, never a thread, and not for long);
- headers over MAX_HEAD bytes are refused with 431;
- a client that half-closes mid-body is still answered (the body ended short: 400), and an upload
  refused before its end (413) gets its answer before the rest is dropped (``_Lingering``);
- every connection has TCP_NODELAY, whichever event loop runs;
- every error this layer answers is JSON with the security headers, like the app's.
An idle connection costs a socket and a few KB of Python objects; there is no connection cap, so
300 idle sockets do not keep the next client (or the health check) waiting.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

KEEPALIVE = 5.0          # seconds an idle connection (new, or between requests) stays open
MIN_RATE = 64 * 1024     # bytes per second a body must at least arrive at, on top of the request timeout
MAX_HEAD = 64 * 1024     # bytes of request line and headers (the browser sends under 2 KB)
LINGER = 2.0             # seconds a refused upload's rest is read and dropped before the socket closes
LINGER_BYTES = 16 * 1024 * 1024  # ... and at most this much of it

# Everything the page needs comes from this server; images it shows are drawn into canvases.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def error_response(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 error answer, JSON, closing the connection (for the errors found below the app)."""
    body = json.dumps({"error": message}, separators=(",", ":")).encode()
    head = [STATUS_LINE[status], b"content-type: application/json\r\ncache-control: no-store\r\n",
            b"content-length: %d\r\nconnection: close\r\n" % len(body)]
    head += [f"{name}: {value}\r\n".encode("latin-1") for name, value in SECURITY_HEADERS.items()]
    return b"".join(head) + b"\r\n" + body


class _Lingering:
    """The transport as a request's cycle sees it.  Closing while the request's body is still arriving
    (a 413, a 405 to an upload) would reset the connection, and the client could lose the answer
    before reading it; so the answer goes out with a FIN, and the rest of the body is read and
    dropped for up to LINGER seconds (LINGER_BYTES) before the socket closes."""

    def __init__(self, transport, protocol: "GuardedProtocol"):
        self._transport = transport
        self._protocol = protocol

    def close(self) -> None:
        if self._protocol._in_body and not self._transport.is_closing() and self._transport.can_write_eof():
            self._transport.write_eof()
            self._protocol._linger()
        else:
            self._transport.close()

    def __getattr__(self, name):
        return getattr(self._transport, name)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline on each request and a bound on its headers.
    ``request_timeout`` is set per server (``protocol_for``)."""

    request_timeout = 10.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._deadline = None      # the TimerHandle that closes a request too slow to arrive
        self._head_bytes = 0       # bytes received while waiting for a request's headers
        self._in_body = False      # between a request's headers and its end
        self._head_size = 0        # bytes of this request's URL and headers, as parsed
        self._lingering = None     # bytes dropped since the answer went out (None: not lingering)

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        # uvicorn writes a response's headers and body separately: with Nagle's algorithm the body
        # waits for the client's delayed ACK, 44 ms a keep-alive request (measured on asyncio's loop,
        # which sets TCP_NODELAY only on sockets created with proto IPPROTO_TCP; uvloop sets it always).
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # uvicorn arms its keep-alive timer only after a response: a client that connects and says
        # nothing would otherwise hold its socket for ever.
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, with the header bound, and the parser's own reason in a JSON 400."""
        if self._lingering is not None:  # answered already: drop the rest of the upload
            self._lingering += len(data)
            if self._lingering > LINGER_BYTES:
                self.transport.close()
            return
        self._unset_keepalive_if_required()
        if not self._in_body:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            if self._head_size > MAX_HEAD:  # on_headers_complete stopped the parser
                self._refuse(431, f"the request's headers are over {MAX_HEAD // 1024} KB")
            else:
                self._refuse(400, f"malformed HTTP request: {str(error)[:200] or 'unreadable'}")
            return
        except httptools.HttpParserUpgrade:
            # No WebSocket or h2c here: a bodiless request is answered as it is; one with a body is
            # refused, since the parser stops at the upgrade and the app would never see the body.
            if any(name in (b"content-length", b"transfer-encoding") and value not in (b"0", b"")
                   for name, value in self.headers):
                self._refuse(400, "this server does not upgrade connections; send the request without Upgrade")
                return
        if not self._in_body and self._head_bytes > MAX_HEAD and not self.transport.is_closing():
            self._refuse(431, f"the request's headers are over {MAX_HEAD // 1024} KB")

    def eof_received(self) -> bool | None:
        """The client closed its side.  Mid-request, answer what arrived (a body ended short is a
        400) and close after; between requests, close now."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return None
        cycle.keep_alive = False
        if self._in_body:
            self._in_body = False
            self._cancel_deadline()
            cycle.more_body = False
            cycle.message_event.set()
        return True  # the socket stays open to send the answer

    def _linger(self) -> None:
        self._lingering = 0
        self._in_body = False
        self._cancel_deadline()
        self.flow.resume_reading()
        self.loop.call_later(LINGER, self.transport.close)

    def _refuse(self, status: int, message: str) -> None:
        self._cancel_deadline()
        self.transport.write(error_response(status, message))
        self.transport.close()

    # -- the request deadline ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = 0
        self._cancel_deadline()
        self._deadline = self.loop.call_later(self.request_timeout, self._too_slow)

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._head_size > MAX_HEAD:  # all of it arrived at once: refused here, before the app sees it
            raise ValueError("headers too large")
        self._in_body = True
        self._head_bytes = 0
        length = next((value for name, value in self.headers if name == b"content-length"), b"0")
        if self._deadline is not None and length.isdigit() and int(length) > MIN_RATE:
            when = self._deadline.when() + int(length) / MIN_RATE
            self._deadline.cancel()
            self._deadline = self.loop.call_at(when, self._too_slow)
        super().on_headers_complete()
        if self.cycle is not None and not isinstance(self.cycle.transport, _Lingering):
            self.cycle.transport = _Lingering(self.transport, self)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._cancel_deadline()
        super().on_message_complete()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        """The request did not arrive in time: nobody to answer, hang up (the app sees a disconnect)."""
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol_for(request_timeout: float) -> type[GuardedProtocol]:
    """The protocol class for one server (uvicorn instantiates it per connection)."""
    return type("ServerProtocol", (GuardedProtocol,), {"request_timeout": request_timeout})


class _Stderr(logging.Handler):
    """Writes to whatever sys.stderr is when a record comes (pytest swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 -- logging must never break serving
            self.handleError(record)


def quiet_uvicorn_logs() -> None:
    """uvicorn's own warnings and errors on stderr as 'digitnet serve: ...'; its start-up and access
    lines off.  Idempotent."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("digitnet serve: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    access = logging.getLogger("uvicorn.access")
    access.handlers, access.propagate = [], False
