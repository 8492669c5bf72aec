"""One HTTP/2 connection: a reader greenlet, a greenlet per stream, one writer at a time.

The connection's greenlet reads the socket and feeds the ``h2`` state machine; each request
(stream) runs the app in a greenlet of its own, so streams are served concurrently (up to
``--http2-max-concurrent-streams``), where gunicorn's gevent worker serves them one after
another. Every greenlet of the connection changes the ``h2`` state directly (greenlets never
preempt each other, so no call is ever interleaved) and then calls :meth:`H2Session.flush`:
the first caller writes, and a caller that finds a write in progress leaves its frames to
that writer, which sends everything queued before it returns. Flow control is the
backpressure: a stream whose window is shut waits (up to ``--timeout``) for the client's
WINDOW_UPDATE.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import gevent
import gevent.event
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from .connection import RequestTimeout, os_sockets, server_defaults
from .h2stream import H2Stream
from .protocol.events import Headers, Request
from .protocol.h2request import request_from_headers, response_headers, trailer_headers
from .protocol.policy import Rejection
from .sendall import send_all
from .streams import BodyError, ClientDisconnected, ConnectionInfo

if TYPE_CHECKING:
    from .connection import Handler
    from .worker import WorkerState

log = logging.getLogger("greenserve.error")

_RECV_SIZE = 65536
# Flood limits (per 10 s): what a client may make the server do for nothing.
_FLOOD_WINDOW = 10.0
_MAX_RESETS = 200
_MAX_CONTROL_FRAMES = 1000
_Setting = h2.settings.SettingCodes


class H2Session:
    """Serves the streams of one HTTP/2 connection until it closes (see module docstring)."""

    def __init__(self, sock: socket.socket, info: ConnectionInfo, state: WorkerState) -> None:
        self.sock = sock
        self.info = info
        self.state = state
        cfg = state.cfg
        self.send_timeout: float | None = state.send_timeout
        #: the adapters' per-connection environ keys (see ``HTTPConnection.environ_base``)
        self.environ_base: dict[str, Any] | None = None
        # Heads are checked in protocol/h2request.py (one pass, a 400 on the stream), and
        # responses there too (names lower-cased, connection fields dropped, values
        # checked by the writer's rules): h2's own passes would do it all again.
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=False,
            normalize_inbound_headers=False, validate_outbound_headers=False,
            normalize_outbound_headers=False))
        self.max_streams = cfg.http2_max_concurrent_streams
        self.h2.local_settings = self._settings(self.max_streams)
        self.streams: dict[int, H2Stream] = {}
        self._greenlets: set[gevent.Greenlet] = set()
        self._window = gevent.event.Event()  # pulsed on every WINDOW_UPDATE or SETTINGS
        self._writing = False
        self._closing = False  # GOAWAY sent: finish the open streams, then close
        self._said_goodbye = False  # the final GOAWAY went through h2
        self._broken = False
        self._killed = False
        self._last_stream = 0
        self._resets: deque[float] = deque()
        self._control: deque[float] = deque()
        self._trust_scheme = state.forwarded_allow.allows(info)
        self.requests = 0
        self.handler: Any = None
        # the OS socket under gevent's, for the first try of each write (not under TLS)
        self._direct = os_sockets(sock)[0]
        self._reader: Any = None  # the connection's greenlet, while it waits in recv()
        self._wake_pending = False
        self._flush_pending = False
        self._hub = gevent.get_hub()
        #: set while the asyncio loop's greenlet drives a stream (asgi/h2cycle.py): flush()
        #: must not wait there, so it leaves the write to a greenlet of its own
        self.nonblocking = False

    def _settings(self, max_streams: int) -> h2.settings.Settings:
        cfg = self.state.cfg
        return h2.settings.Settings(client=False, initial_values={
            _Setting.MAX_CONCURRENT_STREAMS: max_streams,
            _Setting.INITIAL_WINDOW_SIZE: cfg.http2_initial_window_size,
            _Setting.MAX_FRAME_SIZE: cfg.http2_max_frame_size,
            _Setting.ENABLE_PUSH: 0,
            **({_Setting.MAX_HEADER_LIST_SIZE: cfg.http2_max_header_list_size}
               if cfg.http2_max_header_list_size else {}),
        })

    # -- the reader --------------------------------------------------------------------------
    def serve(self, handler: Handler, preread: bytes = b"",
              upgrade: tuple[Request, bytes, bytes] | None = None) -> None:
        """Read frames and run streams until the connection ends.

        ``preread``: bytes already read from the socket (the preface, pipelined frames);
        ``upgrade``: an ``Upgrade: h2c`` request, its body and its HTTP2-Settings header,
        served as stream 1.
        """
        self.handler = handler
        self.state.h2_sessions.add(self)
        self.sock.settimeout(None)  # the reader and the writers time themselves
        try:
            if upgrade is not None:
                self._start_upgraded(*upgrade)
            else:
                self.h2.initiate_connection()
            # The limit went out in SETTINGS; h2 would end the whole connection when a
            # client opens more streams (one that sent them before it read the SETTINGS),
            # so h2 is told "no limit" and _request() refuses the extra streams one by one
            # (REFUSED_STREAM: the client may retry them), as RFC 9113 5.1.2 allows.
            self.h2.local_settings = self._settings(2**31 - 1)
            self.flush()
            if preread:
                self._received(preread)
            while not self._broken:
                data = self._read()
                if not data:
                    break
                self._received(data)
        except (ClientDisconnected, OSError):
            pass  # the client is gone: nothing more to say
        except gevent.GreenletExit:
            self._killed = True  # the worker stops without waiting: so do the streams
            raise
        finally:
            self._end()

    def _read(self) -> bytes:
        """The next bytes from the client; ``b""`` at EOF or once the connection may close."""
        while True:
            if self._closing and not self.streams:
                return b""
            idle = float(self.state.cfg.keepalive) if self.requests else \
                self.state.cfg.header_timeout
            timeout = None if self.streams else max(idle, 0.1)
            self._reader = gevent.getcurrent()
            try:
                with gevent.Timeout(timeout, TimeoutError):
                    return self.sock.recv(_RECV_SIZE)
            except TimeoutError:
                if self.streams:
                    continue
                self.go_away()  # idle for the keep-alive time: say goodbye and close
                return b""
            except _Wake:
                continue
            finally:
                self._reader = None

    def _start_upgraded(self, request: Request, body: bytes, settings: bytes) -> None:
        """Stream 1 is the HTTP/1.1 request that asked for the upgrade (RFC 7540 3.2)."""
        self.h2.initiate_upgrade_connection(settings)
        self._last_stream = 1
        self.requests += 1
        self.state.count_request()
        stream = H2Stream(self, request, body_ended=False)
        if body:
            stream.feed(body, 0)  # read before the 101: no window to give back
        stream.feed_end()
        self.streams[1] = stream
        self._spawn(self._run_stream, stream)

    def _received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.info("HTTP/2 protocol error from %s: %s", self.info.peer, exc)
            self._broken = True  # h2 has queued its GOAWAY
            events = []
        for event in events:
            self._dispatch(event)
        if self._oversized_frame():
            log.info("HTTP/2 frame over the maximum size from %s", self.info.peer)
            self.h2.close_connection(h2.errors.ErrorCodes.FRAME_SIZE_ERROR,
                                     last_stream_id=self._last_stream)
            self._broken = True
        self.flush()

    def _oversized_frame(self) -> bool:
        """Whether h2 is buffering a frame longer than allowed.

        h2 checks a frame's length only once all of it has arrived, so a client could make
        it buffer up to 16 MiB per connection first. What is left in its buffer after
        receive_data() is one incomplete frame: more than a header and the largest allowed
        payload means the frame is too long.
        """
        buffered = getattr(self.h2.incoming_buffer, "_data", b"")
        return len(buffered) > self.h2.max_inbound_frame_size + 9

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._request(event)
        elif isinstance(event, h2.events.DataReceived):
            self._data(event)
        elif isinstance(event, (h2.events.StreamEnded, h2.events.TrailersReceived)):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.feed_end()
        elif isinstance(event, h2.events.StreamReset):
            self._stream_reset(event)
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self._pulse_window()
            if isinstance(event, h2.events.RemoteSettingsChanged):
                self._count_control()
        elif isinstance(event, h2.events.PingReceived):
            self._count_control()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._closing = True  # the client's GOAWAY: finish what is open, then close
            if event.error_code:
                self._broken = True
                self._reset_all()

    def _request(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        assert stream_id is not None
        # h2's count: a stream answered in full is closed for the client too, even while
        # its greenlet is still finishing (the access log line, hooks).
        if self._closing or self.h2.open_inbound_streams > self.max_streams:
            self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        self._last_stream = stream_id
        request = request_from_headers(
            list(event.headers or ()), stream_id, self.state.limits,
            has_body=event.stream_ended is None, trust_scheme=self._trust_scheme)
        self._start_stream(request, stream_id, ended=event.stream_ended is not None)

    def _start_stream(self, request: Request | Rejection, stream_id: int, *,
                      ended: bool) -> None:
        self.requests += 1
        self.state.count_request()
        if isinstance(request, Rejection):
            log.info("bad request from %s: %d %s", self.info.peer, request.status,
                     request.reason)
            stub = Request(b"GET", b"/", b"2.0", [], True, stream_id=stream_id)
            stream = H2Stream(self, stub, body_ended=True)
            self.streams[stream_id] = stream
            self._spawn(self._refuse, stream, request)
            return
        stream = H2Stream(self, request, body_ended=ended)
        self.streams[stream_id] = stream
        self._spawn(self._run_stream, stream)

    def _spawn(self, func: Any, *args: Any) -> None:
        greenlet = gevent.spawn(self._tracked, func, args)
        self._greenlets.add(greenlet)

    def _tracked(self, func: Any, args: tuple[Any, ...]) -> None:
        # Cheaper than Greenlet.link(): the greenlet leaves the set as it ends.
        try:
            func(*args)
        finally:
            self._greenlets.discard(gevent.getcurrent())

    def _data(self, event: h2.events.DataReceived) -> None:
        stream = self.streams.get(event.stream_id)
        length = event.flow_controlled_length or 0
        if stream is None or stream.reset or stream.body_done:
            self.consumed(event.stream_id or 0, length)  # nobody reads it: free the window
        else:
            stream.feed(event.data or b"", length)
            if length and not event.data:
                self._count_control()  # padding only: costs the server, carries nothing
        if event.stream_ended is not None and stream is not None:
            stream.feed_end()

    def _stream_reset(self, event: h2.events.StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.feed_reset()
        self._pulse_window()
        if event.remote_reset and _flooded(self._resets, _MAX_RESETS):
            self._calm_down("stream resets")

    def _count_control(self) -> None:
        if _flooded(self._control, _MAX_CONTROL_FRAMES):
            self._calm_down("control frames")

    def _calm_down(self, what: str) -> None:
        log.warning("HTTP/2 flood of %s from %s: closing the connection", what, self.info.peer)
        self.h2.close_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                                 last_stream_id=self._last_stream)
        self._broken = True
        self._reset_all()

    def _pulse_window(self) -> None:
        window, self._window = self._window, gevent.event.Event()
        window.set()

    # -- a stream's greenlet -----------------------------------------------------------------
    def _run_stream(self, stream: H2Stream) -> None:
        try:
            limit = self.state.cfg.request_timeout
            if limit:
                with gevent.Timeout(limit, RequestTimeout(limit)):
                    self.handler(stream)
            else:
                self.handler(stream)
        except RequestTimeout as exc:
            log.error("Request timed out after %s s: %s", exc, _line(stream.request))
            self._answer_error(stream, 504, "request timed out")
        except BodyError as exc:
            self._answer_error(stream, exc.error.status_code or 400, exc.error.reason)
        except (ClientDisconnected, OSError):
            pass
        except Exception:
            log.exception("Error serving HTTP/2 stream %s", _line(stream.request))
            self._answer_error(stream, 500, "Internal Server Error")
        finally:
            self._stream_done(stream)

    def _refuse(self, stream: H2Stream, rejection: Rejection) -> None:
        try:
            stream.send_text(rejection.status, rejection.reason)
        except (ClientDisconnected, OSError):
            pass
        finally:
            self._stream_done(stream)

    def _answer_error(self, stream: H2Stream, status: int, reason: str) -> None:
        if stream.response_started or stream.reset:
            return  # the head is out: the stream is reset below
        try:
            stream.send_text(status, reason)
        except (ClientDisconnected, OSError):
            pass

    def _stream_done(self, stream: H2Stream) -> None:
        stream_id = stream.stream_id
        self.streams.pop(stream_id, None)
        if not self._broken:
            if not stream.complete and not stream.reset:
                self.reset_stream(stream_id)  # the response broke off: say so
            elif not stream.body_done and not stream.reset:
                # Answered before the whole body came: the client may stop sending it.
                self.reset_stream(stream_id, no_error=True)
            try:
                self.flush()
            except (ClientDisconnected, OSError):
                pass
        if not self.streams:
            self._wake_reader()  # to close (after GOAWAY), or to start the idle timeout

    def _wake_reader(self) -> None:
        """Make the reader, if it waits in recv(), look again (the connection may close).

        From the hub, as gevent's own timeouts do: a greenlet that threw into the reader
        itself would be parked until someone switched back to it.
        """
        if self._reader is not None and not self._wake_pending:
            self._wake_pending = True
            gevent.get_hub().loop.run_callback(self._wake_now)

    def _wake_now(self) -> None:  # in the hub
        self._wake_pending = False
        reader = self._reader
        if reader is not None:  # still waiting in recv()
            reader.throw(_Wake)

    # -- writing (any greenlet of the connection) ---------------------------------------------
    def response_headers(self, status: int, headers: Headers) -> Headers:
        """The HTTP/2 header list of a response, with Date and Server added."""
        defaults = server_defaults(self.state.server_header)
        return response_headers(status, headers, [(k, v[1]) for k, v in defaults.items()])

    def send_headers(self, stream_id: int, headers: Headers, *, end_stream: bool = False,
                     flush: bool = True) -> None:
        """A HEADERS frame (a response head or a 1xx)."""
        self._check_open(stream_id)
        self.h2.send_headers(stream_id, headers, end_stream=end_stream)
        if flush:
            self.flush()

    def send_trailers(self, stream_id: int, trailers: Headers) -> None:
        """The trailers, ending the stream."""
        self.send_headers(stream_id, trailer_headers(trailers), end_stream=True)

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """DATA frames as the client's windows allow, waiting for more window as needed."""
        view = memoryview(data)
        while True:
            self._check_open(stream_id)
            size = min(self.h2.local_flow_control_window(stream_id),
                       self.h2.max_outbound_frame_size, len(view))
            if size > 0 or not view:
                last = size == len(view)
                self.h2.send_data(stream_id, bytes(view[:size]), end_stream=end_stream and last)
                view = view[size:]
                if last:
                    break
                continue
            self.flush()
            if not self._window.wait(self.send_timeout):
                self.reset_stream(stream_id, cancel=True)
                raise ClientDisconnected("timed out waiting for the client's window")
        self.flush()

    def _check_open(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if self._broken or (stream is not None and stream.reset):
            raise ClientDisconnected("the stream was reset")

    def reset_stream(self, stream_id: int, *, cancel: bool = False,
                     no_error: bool = False) -> None:
        """RST_STREAM: CANCEL, NO_ERROR (answered early) or INTERNAL_ERROR."""
        codes = h2.errors.ErrorCodes
        code = codes.CANCEL if cancel else codes.NO_ERROR if no_error else codes.INTERNAL_ERROR
        try:
            self.h2.reset_stream(stream_id, code)
        except h2.exceptions.StreamClosedError:
            pass
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.feed_reset()

    def consumed(self, stream_id: int, length: int) -> None:
        """The app read ``length`` bytes of a stream's body: give the window back.

        Never blocks: the asyncio loop's greenlet calls it too (ASGI ``receive()``).
        """
        if length and not self._broken:
            self.h2.acknowledge_received_data(length, stream_id)
            self.flush_soon()

    def flush(self) -> None:
        """Send what ``h2`` has queued; a write already under way sends it instead."""
        if self._writing:
            return
        if self.nonblocking:
            self.flush_soon()
            return
        self._writing = True
        self._write_all(b"")

    def _write_all(self, first: bytes | memoryview) -> None:
        """(``_writing`` is set) Send ``first``, then all that h2 queues meanwhile."""
        data = first or self.h2.data_to_send()
        try:
            while data:
                send_all(self.sock, self._direct, data, self.send_timeout)
                data = self.h2.data_to_send()
        except (OSError, TimeoutError) as exc:
            self._broken = True
            self._reset_all()
            raise ClientDisconnected(str(exc)) from exc
        finally:
            self._writing = False

    def flush_soon(self) -> None:
        """:meth:`flush` for callers that must not block (the asyncio loop's greenlet).

        A hub callback tries one non-blocking send; only what the kernel does not take then
        needs a greenlet (which waits for it): no greenlet per response.
        """
        if not self._writing and not self._flush_pending:
            self._flush_pending = True
            self._hub.loop.run_callback(self._flush_from_hub)

    def _flush_from_hub(self) -> None:  # in the hub: must not block
        self._flush_pending = False
        if self._writing or self._broken:
            return
        data = self.h2.data_to_send()
        if not data:
            return
        sent = 0
        if self._direct is not None:
            try:
                sent = self._direct.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._broken = True
                self._reset_all()
                return
            if sent == len(data):
                return
        self._writing = True
        self._spawn(self._write_rest, memoryview(data)[sent:])

    def _write_rest(self, rest: memoryview) -> None:
        try:
            self._write_all(rest)
        except ClientDisconnected:
            pass

    # -- ending --------------------------------------------------------------------------------
    def go_away(self) -> None:
        """GOAWAY: no new streams; the open ones finish, then the connection closes."""
        if self._closing or self._broken:
            return
        self._closing = True
        if self.streams:
            # GOAWAY waits until they are answered: h2-based clients (httpx) take any
            # GOAWAY as the end and drop the responses still under way. Until then, new
            # streams are refused (REFUSED_STREAM: safe to retry elsewhere).
            return
        self._final_goaway()
        try:
            self.flush()
        except (ClientDisconnected, OSError):
            pass
        self._wake_reader()

    def _final_goaway(self) -> None:
        if not self._said_goodbye and not self._broken:
            self._said_goodbye = True
            self.h2.close_connection(last_stream_id=self._last_stream)

    def _reset_all(self) -> None:
        for stream in list(self.streams.values()):
            stream.feed_reset()

    def _end(self) -> None:
        self.state.h2_sessions.discard(self)
        self._reset_all()  # the client is gone (or we close): the apps' I/O now fails
        if self._greenlets:
            if not self._killed:
                gevent.joinall(list(self._greenlets), timeout=self.state.cfg.graceful_timeout)
            gevent.killall(list(self._greenlets), block=True, timeout=1)
        try:
            self._final_goaway()
            self.flush()
        except (ClientDisconnected, OSError):
            pass

    @property
    def current(self) -> tuple[float, str] | None:
        """(start, request line) of some stream in flight, for the worker's activity log."""
        for stream in self.streams.values():
            return time.monotonic(), _line(stream.request)
        return None


class _Wake(Exception):
    """Thrown into the reader's ``recv`` to make it look again (the last stream ended)."""


def _flooded(times: deque[float], limit: int) -> bool:
    now = time.monotonic()
    times.append(now)
    while times and times[0] < now - _FLOOD_WINDOW:
        times.popleft()
    return len(times) > limit


def _line(request: Request) -> str:
    return f"{request.method.decode('latin-1')} {request.target[:200].decode('latin-1')}"
