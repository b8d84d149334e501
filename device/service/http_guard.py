"""uvicorn's httptools protocol with limits on a request's head (its request line and headers).

httptools keeps a header until it ends, with no limit on its size, and uvicorn gives a client
forever to finish its headers: four clients sending 50 MB headers that never ended added 205 MB
to the service (the systemd unit's cap is 400 MB), and a client that sends a byte now and then
holds its connection, and one of the service's 256 (server.MAX_CONNECTIONS), for good.
uvicorn's fallback parser h11 has a size limit of its own (16 KiB) but no time limit either.

Here a head larger than HEAD_LIMIT_BYTES is answered 431, and one that takes longer than
HEAD_TIMEOUT_S to arrive is answered 408; both close the connection. A body from which nothing
arrives for BODY_IDLE_TIMEOUT_S is answered 408 too (uvicorn waited for it forever: an upload
sent a byte a minute held a connection and its share of the uploads' memory). A connection
waiting between requests is still closed after uvicorn's keep-alive timeout. The trailer fields a
chunked body may end with are a header section too, kept the same way (uvicorn adds them to the
request's headers): past HEAD_LIMIT_BYTES they are answered 431 as well.

The size holds however the bytes arrive, checked with an addition or two a read. While a head
is still coming, the reads after the one it began in are all head: a head that never ends is
cut off once they pass the limit (holding the limit and a read or two at most: asyncio reads
up to 256 KiB at a time). The read it began in is not counted there, as it may hold requests
before it: counting it whole answered every request of a pipelined burst 431. When a head
ends, the reads since it began and the one that ended it bound its size: only where they come
to more than the limit (a large head, or a read that also held a large body or many requests
one behind the other) is the head measured, from what the parser made of it (method, URL,
header fields; the blanks it drops around values not counted). Checking only while a head was
unfinished let a head of any size through when one read brought it whole, or when its last
read ended it. An exception from the parser's callback is what stops httptools there, so
uvicorn also logs such a refusal as "Invalid HTTP request received.".
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

# nginx takes heads up to 4 × 8 KiB by default, and browsers' cookies stay well under that.
HEAD_LIMIT_BYTES = 64 * 1024
# httptools reads a URL of at most this many bytes (its offsets are 16-bit).
URL_LIMIT_BYTES = 65535
# nginx's client_header_timeout is 60 s; a head is one packet for any client on any network.
HEAD_TIMEOUT_S = 20.0
# nginx's client_body_timeout: the longest a body may go without a byte arriving (not the
# whole body's time: a large photo over a slow link keeps arriving).
BODY_IDLE_TIMEOUT_S = 60.0


_TOO_LARGE = (b"431 Request Header Fields Too Large",
              b"the request's headers are larger than %d bytes" % HEAD_LIMIT_BYTES)


class _HeadTooLargeError(Exception):
    """Raised from a parser callback to stop httptools at a head past HEAD_LIMIT_BYTES."""


def _refusal(status: bytes, detail: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(detail)).encode() + b"\r\nconnection: close\r\n\r\n"
            + detail)


def _sweep(loop: asyncio.AbstractEventLoop, state: ServerState) -> None:
    """Close the connections whose head is late; again in a moment while any are open. One
    sweep for all: a timer per request cost 2.5% of the service's CPU at full load."""
    now = loop.time()
    for connection in list(state.connections):
        if isinstance(connection, GuardedHttpToolsProtocol):
            connection.close_if_late(now)
    state.head_sweep = (loop.call_later(HEAD_TIMEOUT_S / 10, _sweep, loop, state)  # type: ignore[attr-defined]
                        if state.connections else None)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that closes a connection whose request head is too large or too slow
    (see the module's docstring)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_head = False  # between a request's first byte and the end of its headers
        self._head_bytes = 0  # the reads before this one since the present head began
        self._whole_bytes = 0  # those of them after the one it began in: all of them head
        self._read_bytes = 0  # this read's
        self._too_large = False
        # A chunked body's last (empty) chunk may be followed by trailer fields, a header
        # section of its own: a chunk header no body bytes have followed yet may be that one.
        self._in_trailers = False
        self._trailers_began = False  # in this read
        self._trailer_fields = 0  # the trailer fields' bytes, as on_header has them
        self._trailer_bytes = 0  # the reads after the one the trailers began in
        self._begun = False  # uvicorn gives a connection that never sends a byte forever
        self._waiting_since = self.loop.time()  # connected, or the present head's first byte
        self._in_body = False  # between the end of a request's head and the end of its body
        self._body_since = 0.0  # when its body last made progress
        if getattr(self.server_state, "head_sweep", None) is None:
            _sweep(self.loop, self.server_state)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = self._begun = True
        self._head_bytes = self._whole_bytes = 0
        self._in_trailers = False
        self._waiting_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self._in_head = False
        if (self._head_bytes + self._read_bytes > HEAD_LIMIT_BYTES
                and self._parsed_head_bytes() > HEAD_LIMIT_BYTES):
            # An exception is what stops httptools mid-read (the rest may be a body or more
            # requests): uvicorn answers it with send_400_response, which answers 431 instead.
            self._too_large = True
            raise _HeadTooLargeError
        super().on_headers_complete()
        self._in_body = True
        self._body_since = self.loop.time()

    # uvicorn adds trailer fields to the request's headers, and httptools builds each value up
    # until it ends, with no limit of either's: they are held to HEAD_LIMIT_BYTES as a head is.
    def on_chunk_header(self) -> None:
        self._in_trailers = self._trailers_began = True
        self._trailer_fields = self._trailer_bytes = 0

    def on_body(self, body: bytes) -> None:
        self._in_trailers = False  # the chunk had data: not the last one
        super().on_body(body)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_trailers:
            self._trailer_fields += len(name) + len(value) + 4
            if self._trailer_fields > HEAD_LIMIT_BYTES:
                self._too_large = True
                raise _HeadTooLargeError  # stops httptools; answered in send_400_response
        super().on_header(name, value)

    def on_message_complete(self) -> None:
        self._in_trailers = self._in_body = False
        super().on_message_complete()

    def _parsed_head_bytes(self) -> int:
        """The head as the parser has it: "METHOD URL HTTP/1.1", a "name: value" line per
        field, and their line ends (the blanks around values, which it drops, not counted)."""
        fields = sum(len(name) + len(value) + 4 for name, value in self.headers)
        return len(self.parser.get_method()) + len(self.url) + 12 + fields + 2

    def data_received(self, data: bytes) -> None:
        self._read_bytes = len(data)
        if self._in_body:
            self._body_since = self.loop.time()
        super().data_received(data)  # the parser's callbacks above say where the head is
        if self._in_head:
            if self._head_bytes:  # the head began in an earlier read: this one is all head
                self._whole_bytes += len(data)
                if self._whole_bytes > HEAD_LIMIT_BYTES:
                    self._refuse(*_TOO_LARGE)
            # The read it began in may also hold requests before it (pipelined, or the end of
            # a body): counted in the bound on_headers_complete checks, not here.
            self._head_bytes += len(data)
        elif self._in_trailers and not self._trailers_began:
            # A trailer value is built up whole before on_header sees it: the reads after the
            # one the trailers began in (which may hold the body before them) are all
            # trailers, counted as a head's are above.
            self._trailer_bytes += len(data)
            if self._trailer_bytes > HEAD_LIMIT_BYTES:
                self._refuse(*_TOO_LARGE)
        self._trailers_began = False

    def send_400_response(self, msg: str) -> None:
        # A longer URL fails in httptools as "Invalid HTTP request received.", which says
        # nothing of why. Such a head is also past HEAD_LIMIT_BYTES: the URL is named first.
        if len(getattr(self, "url", None) or b"") > URL_LIMIT_BYTES:
            msg = f"the request's URL is longer than {URL_LIMIT_BYTES} bytes"
        elif self._too_large:  # see on_headers_complete
            self._refuse(*_TOO_LARGE)
            return
        super().send_400_response(msg)

    def close_if_late(self, now: float) -> None:
        """Close the connection if its head (or, when it has sent nothing yet, its first) has
        taken longer than HEAD_TIMEOUT_S, or its body has stalled for BODY_IDLE_TIMEOUT_S;
        between requests uvicorn's keep-alive timeout rules."""
        if (self._in_head or not self._begun) and now - self._waiting_since > HEAD_TIMEOUT_S:
            if not self._in_head:
                self.transport.close()  # it never sent anything: nothing to answer
            else:
                self._refuse(b"408 Request Timeout", b"the request's headers did not arrive "
                                                     b"within %g s" % HEAD_TIMEOUT_S)
        elif self._in_body:
            if self.flow.read_paused or (self.cycle is not None
                                         and self.cycle.waiting_for_100_continue):
                # The service is not reading yet (it has enough of the body buffered, or has
                # not asked for it, which a client sending `Expect: 100-continue` waits for):
                # the client is not the one keeping it waiting.
                self._body_since = now
            elif now - self._body_since > BODY_IDLE_TIMEOUT_S:
                # Where it was answered already (e.g. 413 before the body), only closed.
                answered = self.cycle is not None and self.cycle.response_started
                self._refuse(b"408 Request Timeout", b"nothing of the request's body arrived "
                             b"for %g s" % BODY_IDLE_TIMEOUT_S, answer=not answered)

    def _refuse(self, status: bytes, detail: bytes, *, answer: bool = True) -> None:
        if self.transport.is_closing():
            return
        self.logger.warning("closed a connection from %s: %s", self.client and self.client[0],
                            detail.decode())
        if answer:
            self.transport.write(_refusal(status, detail))
        self.transport.close()
