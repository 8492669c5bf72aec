"""What every HTTP/1.1 server connection shares, whichever parser reads the request line and
fields: the head checks, body framing, the request/response cycle and response writing.

Order of work for a head, the same for every parser:

1. :class:`~greenserve.protocol.policy.HeadScanner` checks the raw bytes as they arrive
   (limits, line endings, control bytes, request-line grammar) and finds where the head
   ends, so bad input is refused without waiting for the blank line;
2. the parser (:meth:`BaseH1Connection._parse_head`, the only part a subclass writes) turns
   the delimited head into method, target, version and fields;
3. :func:`~greenserve.protocol.policy.check_fields` checks the fields (framing, Host).

A parser may also refuse a head the scanner passed (its own grammar as a backstop); the
policy's reason is then preferred, so both parsers answer a bad head alike. Bodies are
framed here (``chunked.py``, Content-Length), never by the parser: the parsers are lenient
about chunk lines, and that is where request smuggling lives.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum
from typing import NamedTuple

from .chunked import ChunkedDecoder
from .events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Headers,
    InboundEvent,
    InformationalResponse,
    OutboundEvent,
    ProtocolError,
    Request,
    Response,
)
from .policy import (
    HeadFields,
    HeadScanner,
    Limits,
    Rejection,
    check_fields,
    normalise_head_bytes,
)
from .writer import (
    BodyFraming,
    LocalProtocolError,
    check_headers,
    frame_data,
    frame_end,
    response_head,
    serialize_head,
)


class ParsedHead(NamedTuple):
    """A request head as a parser read it; ``version`` is the whole ``HTTP/1.x``."""

    method: bytes
    target: bytes
    version: bytes
    headers: Headers


def split_head(raw: bytes) -> ParsedHead:
    """Read a head the scanner accepted (CRLF lines, ``name:value`` fields) by splitting it.

    Field values lose their surrounding whitespace; names keep the case the client sent.
    """
    lines = raw[:-4].split(b"\r\n")
    method, target, version = lines[0].split(b" ")  # the scanner checked the grammar
    headers: Headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name, value.strip(b" \t")))
    return ParsedHead(method, target, version, headers)


_VERSIONS = {b"1.1": b"HTTP/1.1", b"1.0": b"HTTP/1.0"}


class _In(Enum):
    HEAD = "head"
    BODY = "body"
    DONE = "done"  # request complete; waiting for the response to finish
    ERROR = "error"
    CLOSED = "closed"


# Module names for the states: an Enum member looked up on its class costs four times a
# global read, and the hot path tests the state several times per request.
_HEAD, _BODY, _DONE, _ERROR, _CLOSED = _In.HEAD, _In.BODY, _In.DONE, _In.ERROR, _In.CLOSED


class BaseH1Connection(ABC):
    """A :class:`~greenserve.protocol.base.ServerConnection` for HTTP/1.x, minus the parser."""

    #: responses of unknown length end with the connection instead of being chunked
    close_delimited = False

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._max_head = limits.max_head_size()
        self._lenient = limits.permit_obsolete_folding or limits.strip_header_spaces
        self._buf = bytearray()
        self._eof = False
        self._in = _HEAD
        self._scanner = HeadScanner(limits)
        self._casefold = limits.casefold_http_method
        self._reset_cycle()

    def _reset_cycle(self) -> None:
        self._scanner.reset()
        self._request: Request | None = None
        self._remaining = 0
        self._chunks: ChunkedDecoder | None = None
        self._pending_end = False
        self._response: BodyFraming | None = None
        self._response_done = False
        self._keep_alive = True

    @abstractmethod
    def _parse_head(self, raw: bytes) -> ParsedHead | Rejection:
        """Read ``raw``, a head the scanner accepted (request line to the empty line).

        A Rejection means the parser's own grammar refused it (a backstop: the policy
        rules are meant to refuse everything first).
        """

    # -- properties ---------------------------------------------------------------------
    @property
    def keep_alive(self) -> bool:
        """Whether the connection may serve another request after this one."""
        return self._keep_alive and self._in is not _ERROR

    @property
    def request(self) -> Request | None:
        """The head of the request being served, if any."""
        return self._request

    @property
    def request_complete(self) -> bool:
        """The request body has been received completely (EndOfMessage was returned)."""
        return self._in is _DONE

    @property
    def response_complete(self) -> bool:
        """The response has been sent completely (EndOfMessage was sent)."""
        return self._response_done

    @property
    def response_started(self) -> bool:
        """A final response head has been produced for this cycle."""
        return self._response is not None

    @property
    def buffered(self) -> int:
        """How many received bytes are not consumed yet (:attr:`trailing_data`, uncopied)."""
        return len(self._buf)

    @property
    def trailing_data(self) -> bytes:
        """Bytes received but not consumed yet (pipelined requests, upgraded protocol)."""
        return bytes(self._buf)

    # -- inbound ------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; ``b""`` means the peer closed its side."""
        if data:
            self._buf += data
        else:
            self._eof = True

    def next_event(self) -> InboundEvent | None:
        """The next inbound event, or None when more bytes (or a response) are needed.

        After a ProtocolError or ConnectionClosed it returns None for ever: nothing past
        an error is parsed, whatever else arrives.
        """
        if self._in is _HEAD:
            return self._next_head()
        if self._in is _BODY:
            return self._next_body()
        return None

    def _fail(self, rejection: Rejection | None, reason: str = "") -> ProtocolError:
        self._in = _ERROR
        self._keep_alive = False
        if rejection is None:
            return ProtocolError(None, reason)
        return ProtocolError(rejection.status, rejection.reason)

    def _next_head(self) -> InboundEvent | None:
        if not self._buf:
            # (what scanning nothing would come to; usually: nothing yet, no EOF)
            return self._incomplete_head() if self._eof else None
        scanned = self._scanner.scan(self._buf)
        if scanned is None:
            return self._incomplete_head()
        if isinstance(scanned, Rejection):
            return self._fail(scanned)
        raw = bytes(self._buf[self._scanner.start : scanned])
        del self._buf[:scanned]
        if self._lenient or self._scanner.odd_version:
            raw = normalise_head_bytes(raw, self._limits)
        return self._start_request(raw)

    def _incomplete_head(self) -> InboundEvent | None:
        if len(self._buf) > self._max_head:
            # Unreachable while the per-line limits hold; kept so memory stays bounded.
            return self._fail(Rejection(431, "request head too large"))
        if not self._eof:
            return None
        if len(self._buf) == self._scanner.start:
            # Nothing, or only the empty lines allowed between requests: a clean close.
            self._in = _CLOSED
            return ConnectionClosed()
        return self._fail(None, "connection closed in the middle of a request head")

    def _start_request(self, raw: bytes) -> InboundEvent:
        head = self._parse_head(raw)
        if isinstance(head, Rejection):
            # Only the parser refused: if the policy refuses too, its reason is the answer.
            split = split_head(raw)
            policy = check_fields(split.version, split.headers)
            return self._fail(policy if isinstance(policy, Rejection) else head)
        fields = check_fields(head.version, head.headers)
        if isinstance(fields, Rejection):
            return self._fail(fields)
        return self._accept(head, fields)

    def _accept(self, head: ParsedHead, fields: HeadFields) -> Request:
        version = head.version
        connection = fields.connection
        # HTTP/1.1 persists unless told otherwise; HTTP/1.0 only when asked to (RFC 9112 9.3).
        persistent = version == b"HTTP/1.1" or b"keep-alive" in connection
        keep_alive = persistent and b"close" not in connection
        request = Request(  # positional: a third of the cost of keywords, on every request
            head.method.upper() if self._casefold else head.method,  # effective_method
            head.target,
            version[5:],  # http_version
            head.headers,
            keep_alive,
            fields.chunked,
            fields.content_length,
            version == b"HTTP/1.1" and b"100-continue" in fields.expect,  # expect_continue
            fields.upgrade if b"upgrade" in connection else None,
        )
        self._request = request
        self._keep_alive = keep_alive
        if fields.chunked:
            self._chunks = ChunkedDecoder(limits=self._limits, header_fields=len(head.headers))
        self._remaining = fields.content_length or 0
        self._pending_end = not fields.chunked and not self._remaining
        self._in = _BODY
        return request

    def _next_body(self) -> InboundEvent | None:
        if self._pending_end:
            self._in = _DONE
            trailers = self._chunks.trailers if self._chunks else []
            return EndOfMessage(trailers=trailers)
        if self._chunks is not None:
            return self._next_chunk(self._chunks)
        if self._buf:
            take = min(self._remaining, len(self._buf))
            data = bytes(self._buf[:take])
            del self._buf[:take]
            self._remaining -= take
            self._pending_end = not self._remaining
            return Data(data)
        if self._eof:
            return self._fail(None, "connection closed in the middle of a request body")
        return None

    def _next_chunk(self, decoder: ChunkedDecoder) -> InboundEvent | None:
        result = decoder.feed(self._buf)
        if isinstance(result, Rejection):
            return self._fail(result)
        self._pending_end = decoder.done
        if result:
            return Data(result)
        if decoder.done:
            return self._next_body()
        if self._eof:
            return self._fail(None, "connection closed in the middle of a chunked body")
        return None

    # -- outbound -----------------------------------------------------------------------
    def send(self, event: OutboundEvent) -> bytes:
        """The bytes that carry ``event``; LocalProtocolError if HTTP cannot carry it."""
        match event:
            case InformationalResponse():
                return self._send_informational(event)
            case Response():
                return self._send_response(event)
            case Data(data=data):
                return self.send_data(data)
            case EndOfMessage(trailers=trailers):
                return self.send_end(trailers)
        raise LocalProtocolError(f"cannot send {event!r}")

    def send_data(self, data: bytes) -> bytes:
        """``send(Data(data))`` without building the event."""
        return frame_data(self._body_framing(), data)

    def send_end(self, trailers: Headers | None = None) -> bytes:
        """``send(EndOfMessage(trailers))`` without building the event."""
        end = frame_end(self._body_framing(), trailers or [])
        # Only now: a body short of its Content-Length must not count as complete, or the
        # connection would be kept alive with broken framing.
        self._response_done = True
        return end

    def _body_framing(self) -> BodyFraming:
        if self._response is None:
            raise LocalProtocolError("response body before the response head")
        if self._response_done:
            raise LocalProtocolError("response body after the end of the response")
        return self._response

    def _send_informational(self, event: InformationalResponse) -> bytes:
        if not 100 <= event.status_code <= 199:
            raise LocalProtocolError(f"{event.status_code} is not an informational status")
        if self._response is not None:
            raise LocalProtocolError("informational response after the final response")
        check_headers(event.headers)
        if self._request is None or self._request.http_version != b"1.1":
            return b""  # HTTP/1.0 clients do not understand 1xx responses
        return serialize_head(
            event.status_code, event.reason, event.headers, http_version=b"HTTP/1.1"
        )

    def _send_response(self, event: Response) -> bytes:
        return self.send_response(event.status_code, event.headers, event.reason)

    def send_response(
        self,
        status: int,
        headers: Headers,
        reason: bytes = b"",
        defaults: dict[bytes, tuple[bytes, bytes]] | None = None,
    ) -> bytes:
        """``send(Response(status, headers, reason))``, plus ``defaults``: headers added
        unless the app sent that field (keyed by lower-case name: the server's Date and
        Server), in the same pass that checks the app's headers. A ``defaults`` dict must
        not change once passed (its serialised form is kept): pass a new one instead.
        """
        if self._response is not None:
            raise LocalProtocolError("response already started")
        request = self._request
        method = request.method if request else b"GET"
        version = b"HTTP/1.1"
        if request is not None:
            version = _VERSIONS.get(request.http_version) or b"HTTP/" + request.http_version
        if self.close_delimited:
            version = b"HTTP/1.0"  # what the framing below follows: never chunked
        # A request we could not parse, or one whose body we did not finish reading,
        # leaves the connection in an unknown state: close it after this response.
        keep_alive = self._keep_alive and request is not None
        head, framing, keep_alive = response_head(  # positional: every response
            status, reason, headers, method, version, keep_alive, defaults)
        self._keep_alive = keep_alive
        self._response = framing
        return head

    def body_passthrough(self, count: int) -> bool:
        """Account for ``count`` body bytes the caller sends itself (``sendfile``).

        Only possible when the body is framed by Content-Length (the bytes go out as they are);
        returns False when the framing needs to wrap them, and the caller must use ``send``.
        """
        framing = self._response
        if framing is None or not framing.send_body or framing.remaining is None:
            return False
        if count <= 0:
            return False  # nothing to pass through (and socket.sendfile refuses count=0)
        if count > framing.remaining:
            raise LocalProtocolError("response body longer than its Content-Length")
        framing.remaining -= count
        return True

    def skip_empty_body(self) -> bool:
        """Complete a request that has no body without producing its EndOfMessage.

        True when the request is now complete (it had no body and the app never asked for
        its end); False when body bytes may still be owed, to be drained by the caller.
        """
        if self._in is _BODY and self._pending_end and self._chunks is None:
            self._in = _DONE
            return True
        return self._in is _DONE

    def close_after_response(self) -> None:
        """Make the current response end the connection (e.g. when draining is refused)."""
        self._keep_alive = False

    def end_cycle(self) -> bool | None:
        """After the response: whether the connection may carry another request.

        True when both messages are complete and the connection persists (the next cycle
        has started, as by :meth:`start_next_cycle`); None when request body bytes are
        still owed (drain them, then call :meth:`start_next_cycle`); False when the
        connection must close. One call where the loop would ask five questions.
        """
        if not self._response_done or not self._keep_alive or self._in is _ERROR:
            return False
        if self._in is not _DONE and not self.skip_empty_body():
            return None
        self._in = _HEAD
        self._reset_cycle()
        return True

    def start_next_cycle(self) -> None:
        """Reset for the next request; only once both messages are complete and kept alive."""
        if not (self._in is _DONE and self._response_done and self.keep_alive):
            raise LocalProtocolError("cannot start a new cycle: this one is not finished")
        self._in = _HEAD
        self._reset_cycle()
