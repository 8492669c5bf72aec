"""The PEP 3333 adapter: runs a WSGI app for one request on an :class:`InlineStream`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from ..h2stream import AnyStream
from ..hooks import RequestInfo, ResponseInfo, call_post_request, safe_call
from ..protocol.events import Headers
from ..protocol.websocket import HandshakeRejection
from ..protocol.writer import LocalProtocolError, with_content_length
from ..streams import ClientDisconnected, InlineStream
from ..trust import SchemeConflict
from .websocket import WebSocket, WebSocketOptions, attach_websocket
from .wsgi_environ import HeaderRefused, ScriptNameMismatch, build_environ, connection_environ
from .wsgi_input import WSGIInput

if TYPE_CHECKING:
    from ..worker import WorkerState

log = logging.getLogger("greenserve.error")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
WSGIApp = Callable[..., Iterable[bytes]]


class FileWrapper:
    """``wsgi.file_wrapper``: iterable over a file, sent with ``sendfile`` when possible."""

    def __init__(self, filelike: IO[bytes], blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        while block := self.filelike.read(self.blksize):
            yield block


#: status lines seen, parsed (apps send a handful; bounded)
_STATUSES: dict[str, tuple[int, bytes]] = {}


def _parse_status(status: str) -> tuple[int, bytes]:
    code, _, reason = status.partition(" ")
    if len(code) != 3 or not code.isdigit():
        raise ValueError(f"invalid WSGI status {status!r}")
    parsed = int(code), reason.encode("latin-1")
    if type(status) is str and len(_STATUSES) < 256:
        _STATUSES[status] = parsed
    return parsed


class WSGIResponder:
    """``start_response``/``write`` for one request, sending the head lazily."""

    def __init__(self, stream: AnyStream) -> None:
        self.stream = stream
        self.status: int | None = None
        self.reason = b""
        self.headers: Headers = []
        self.head_sent = False
        self.used_write = False

    def start_response(
        self, status: str, headers: list[Any], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], None]:
        # ``headers`` is a list of (name, value) str pairs; typed Any so that a compiled
        # build takes pairs given as lists too, as gunicorn and the pure build do.
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the traceback cycle (PEP 3333)
        elif self.status is not None:
            raise AssertionError("start_response called twice without exc_info")
        parsed = _STATUSES.get(status)
        if parsed is None:
            parsed = _parse_status(status)
        self.status, self.reason = parsed
        self.headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable: send body bytes immediately."""
        self.used_write = True
        self.send(data)

    def send(self, data: bytes) -> None:
        if self.stream.upgraded:
            return  # the app switched to WebSocket: its HTTP response is dropped
        if not self.head_sent:
            self.send_head()
        self.stream.send_data(data)

    def send_head(self, length: int | None = None) -> None:
        if self.stream.upgraded:
            return
        if self.status is None:
            raise AssertionError("the app returned a body before calling start_response")
        headers = self.headers
        if length is not None and self.status >= 200 and self.status not in (204, 304):
            headers = with_content_length(headers, length)
        # Marked sent only once the head passed the writer's checks: a bad header value
        # (CR/LF) is then still a clean 500, not a cut connection.
        self.stream.send_head(self.status, headers, self.reason)
        self.head_sent = True


class WSGIAdapter:
    """Calls the app for each request of a worker (the adapter chosen at load time)."""

    def __init__(self, app: WSGIApp, state: WorkerState) -> None:
        self.app = app
        self.state = state
        self.ws_options = WebSocketOptions.from_state(state)

    def __call__(self, stream: AnyStream) -> None:
        state = self.state
        started = time.monotonic() if state.access_log is not None else 0.0
        responder = WSGIResponder(stream)
        environ: dict[str, Any] = {}
        base = stream.conn.environ_base
        if base is None:  # the connection's part of the environ, built on its first request
            base = stream.conn.environ_base = connection_environ(stream.info, state)
        try:
            environ = build_environ(stream.request, stream.info, state, base)
        # (a name per clause: compiled, one name is one type)
        except HeaderRefused as refused:
            log.info("refused header name with underscore: %s", refused)
            _simple_response(responder, 400, f"header name with underscore: {refused}")
            return
        except SchemeConflict as conflict:
            log.info("bad request from %s: 400 %s", stream.info.peer, conflict)
            _simple_response(responder, 400, str(conflict))
            return
        except ScriptNameMismatch as mismatch:  # the front end's configuration (gunicorn: 500)
            log.error("%s", mismatch)
            _simple_response(responder, 500, "Internal Server Error")
            return
        environ["wsgi.input"] = WSGIInput(stream)
        environ["wsgi.file_wrapper"] = FileWrapper
        # gunicorn's key: simple-websocket, Flask-Sock and python-engineio take the socket
        # from it to do their own WebSocket handshake.
        environ["gunicorn.socket"] = stream.sock
        req = self._request_info(stream, environ) if state.request_hooks else None
        try:
            if req is None or self._pre_request(req, environ, responder):
                self._run(environ, responder)
        finally:
            if state.access_log is not None:
                state.log_access(stream, environ, time.monotonic() - started)
            if req is not None:
                resp = ResponseInfo.from_stream(stream, reason=responder.reason)
                safe_call(log, "post_request", call_post_request, self.state.cfg.post_request,
                          self.state.worker, req, environ, resp)

    def _request_info(self, stream: AnyStream, environ: dict[str, Any]) -> RequestInfo | None:
        """The ``req`` object for pre/post_request hooks; None when neither hook is set."""
        if not self.state.request_hooks:
            return None
        self.state.hook_requests += 1
        return RequestInfo.from_request(
            stream.request, stream.info, scheme=environ["wsgi.url_scheme"],
            header_map=self.state.cfg.header_map, req_number=self.state.hook_requests,
        )

    def _pre_request(self, req: RequestInfo, environ: dict[str, Any],
                     responder: WSGIResponder) -> bool:
        """Run ``pre_request``; on an exception answer 500 like a failing app (gunicorn)."""
        try:
            self.state.cfg.pre_request(self.state.worker, req)
        except Exception:
            self._app_failed(environ, responder)
            return False
        return True

    def _run(self, environ: dict[str, Any], responder: WSGIResponder) -> None:
        ws = None
        stream = responder.stream
        # (no call for the usual request; HTTP/2 streams never upgrade)
        if stream.request.upgrade is not None and isinstance(stream, InlineStream):
            ws = attach_websocket(stream, environ, self.ws_options)
        if isinstance(ws, HandshakeRejection):
            log.info("refused WebSocket handshake: %d %s", ws.status_code, ws.reason)
            _simple_response(responder, ws.status_code, ws.reason, ws.headers)
            return
        try:
            result = self.app(environ, responder.start_response)
            try:
                _respond(result, responder, ws)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except StopIteration:
            # gunicorn's signal that the app took the socket over and the connection must
            # close without a response: simple-websocket (Flask-Sock, python-engineio)
            # raises it at the end of a session it ran over ``gunicorn.socket``.
            raise ClientDisconnected("the application took over the connection") from None
        except ClientDisconnected:
            raise
        except Exception:
            if ws is not None and ws.accepted:
                log.exception("Error in WebSocket application %s", environ.get("RAW_URI", "?"))
                ws.finish(failed=True)
                return
            self._app_failed(environ, responder)

    def _app_failed(self, environ: dict[str, Any], responder: WSGIResponder) -> None:
        log.exception("Error handling request %s", environ.get("RAW_URI", "?"))
        if responder.head_sent:
            # The head is out: the only honest signal left is to cut the connection.
            raise ClientDisconnected("application failed after the response started")
        responder.status = None
        _simple_response(responder, 500, "Internal Server Error")


def _respond(result: Iterable[bytes] | None, responder: WSGIResponder,
             ws: WebSocket | None) -> None:
    """Send the app's response, or end its WebSocket session when it used one."""
    if ws is None:
        assert result is not None, "the application returned None"
        _send_result(result, responder, end=True)
        return
    if not ws.accepted and responder.status is None and not result:
        ws.accept()  # returned without a word: gevent-websocket had accepted already
    if ws.accepted:
        for _ in result or ():
            pass  # gevent-websocket runs the iterable and ignores it
    else:
        _send_result(result or (), responder)  # an HTTP answer instead of the upgrade
    if ws.accepted:
        ws.finish()
    else:
        responder.stream.end()


def _send_result(result: Iterable[bytes], responder: WSGIResponder, end: bool = False) -> None:
    """Send the app's body; ``end`` finishes the response too."""
    stream = responder.stream
    if isinstance(result, FileWrapper) and not responder.used_write:
        _send_file(result, responder)
    elif isinstance(result, (list, tuple)) and len(result) <= 1 and not responder.used_write:
        body = result[0] if result else b""
        if not isinstance(body, bytes):
            raise TypeError(f"WSGI body items must be bytes, got {type(body).__name__}")
        if not responder.head_sent:
            responder.send_head(len(body))
        stream.send_data(body, end)  # the usual whole body: head, body and end in one write
        return
    else:
        for chunk in result:
            if not isinstance(chunk, bytes):
                raise TypeError(f"WSGI body items must be bytes, got {type(chunk).__name__}")
            if chunk:
                responder.send(chunk)
        if not responder.head_sent:
            responder.send_head()
    if end:
        stream.end()


def _send_file(wrapper: FileWrapper, responder: WSGIResponder) -> None:
    filelike = wrapper.filelike
    length = None
    for name, value in responder.headers:
        if name.lower() == b"content-length" and value.isdigit():
            length = int(value)
    responder.send_head()
    try:
        offset = filelike.tell()
    except (AttributeError, OSError):
        offset = 0
    responder.stream.sendfile(filelike, offset, length)


def _simple_response(responder: WSGIResponder, status: int, message: str,
                     headers: Headers | None = None) -> None:
    body = f"{status} {message}\n".encode()
    extra = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers or []]
    responder.start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", "text/plain; charset=utf-8"), *extra],
    )
    try:
        responder.send_head(len(body))
        responder.stream.send_data(body, end=True)
    except LocalProtocolError:
        raise ClientDisconnected("could not send the error response") from None
