"""Calling dirty apps from request code: ``get_dirty_client().execute(app, action, ...)``.

The same names as gunicorn's ``gunicorn.dirty`` client. One client (one connection to the
dirty arbiter) per thread, which under greenserve's patching means per greenlet, so
concurrent requests call dirty apps concurrently; ``get_dirty_client_async()`` gives one per
asyncio task context.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import os
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from . import protocol, tlv
from .errors import DirtyConnectionError, DirtyError, DirtyProtocolError, DirtyTimeoutError
from .supervisor import SOCKET_ENV

_ids = itertools.count(1)
_socket_path: str | None = None


def set_dirty_socket_path(path: str) -> None:
    """Where the dirty arbiter listens (set for you in greenserve's workers)."""
    global _socket_path
    _socket_path = path


def _path() -> str:
    path = _socket_path or os.environ.get(SOCKET_ENV)
    if not path:
        raise DirtyError("Dirty socket path not configured: is --dirty-app set, with "
                         "--dirty-workers above 0?")
    return path


def _result(kind: int, payload: Any) -> Any:
    if kind == protocol.RESPONSE:
        return payload.get("result")
    if kind == protocol.ERROR:
        raise DirtyError.from_dict(payload.get("error") or {})
    raise DirtyError(f"Unknown response type: {kind}")


class DirtyClient:
    """One connection to the dirty arbiter; calls on it are one at a time."""

    def __init__(self, socket_path: str | None = None, timeout: float = 30.0) -> None:
        self.socket_path = socket_path or _path()
        self.timeout = timeout
        self._channel: protocol.Channel | None = None
        self._lock = threading.Lock()

    def _connect(self) -> protocol.Channel:
        if self._channel is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.socket_path)
            except OSError as exc:
                sock.close()
                raise DirtyConnectionError(
                    f"cannot reach the dirty arbiter at {self.socket_path}: {exc}") from None
            self._channel = protocol.Channel(sock)
        return self._channel

    def exchange(self, kind: int, payload: Any) -> Iterator[tuple[int, Any]]:
        """Send one message; yield the answers (chunks, then the last one)."""
        channel = self._connect()
        try:
            channel.send(kind, next(_ids), payload)
            while True:
                reply, _, body, _raw = channel.receive()
                yield reply, body
                if reply != protocol.CHUNK:
                    return
        except TimeoutError:
            self.close()
            raise DirtyTimeoutError(timeout=self.timeout) from None
        except (OSError, DirtyProtocolError) as exc:
            self.close()
            if isinstance(exc, DirtyError):
                raise
            raise DirtyConnectionError(str(exc)) from None

    def execute(self, app_path: str, action: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``action`` of ``app_path`` in a dirty worker; its return value."""
        with self._lock:
            for kind, body in self.exchange(protocol.REQUEST, _request(app_path, action, args,
                                                                     kwargs)):
                if kind == protocol.CHUNK:
                    self.close()  # the rest of the stream must not answer the next call
                    raise DirtyError("Unknown response type: chunk (the action yields: "
                                     "call it with stream())")
                return _result(kind, body)
        raise DirtyProtocolError("Connection closed")

    def stream(self, app_path: str, action: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Call an action that yields; its items as they come."""
        with self._lock:
            done = False
            try:
                for kind, body in self.exchange(protocol.REQUEST, _request(
                        app_path, action, args, kwargs)):
                    if kind == protocol.CHUNK:
                        yield body.get("data")
                        continue
                    done = True
                    if kind != protocol.END:
                        yield _result(kind, body)  # a plain return value: one item
                    return
            finally:
                if not done:
                    self.close()  # left early: the unread chunks go with the connection

    def close(self) -> None:
        """Close the connection (the next call makes a new one)."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def __enter__(self) -> DirtyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _request(app_path: str, action: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"app_path": app_path, "action": action, "args": list(args), "kwargs": kwargs}


_local: Any = None


def _clients() -> Any:
    # Made on first use, not at import: the master imports the dirty apps' modules (which
    # may import this one) before any worker patches threading, and a native
    # threading.local would give every greenlet of a worker the same client.
    global _local
    if _local is None:
        _local = threading.local()
    return _local


def thread_client(slot: str, timeout: float = 30.0) -> DirtyClient:
    """This thread's (greenlet's) client in ``slot``, made on first use (calls and the
    stash keep one each: a stash call inside a stream() loop must not wait for it)."""
    clients = _clients()
    client: DirtyClient | None = getattr(clients, slot, None)
    if client is None:
        client = DirtyClient(timeout=timeout)
        setattr(clients, slot, client)
    return client


def get_dirty_client(timeout: float = 30.0) -> DirtyClient:
    """This thread's (greenlet's) client, made on first use."""
    return thread_client("client", timeout)


def close_dirty_client() -> None:
    """Close this thread's (greenlet's) client."""
    clients = _clients()
    client = getattr(clients, "client", None)
    if client is not None:
        client.close()
        clients.client = None


class AsyncDirtyClient:
    """The asyncio client: one connection, calls one at a time."""

    def __init__(self, socket_path: str | None = None, timeout: float = 30.0) -> None:
        self.socket_path = socket_path or _path()
        self.timeout = timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._lock = asyncio.Lock()

    async def _receive(self) -> tuple[int, Any]:
        assert self._streams is not None
        reader = self._streams[0]
        head = await reader.readexactly(protocol.HEADER.size)
        _magic, _version, kind, length, _rid = protocol.HEADER.unpack(head)
        body = await reader.readexactly(length) if length else b""
        return kind, (tlv.decode(body) if body else {})

    async def _send(self, payload: dict[str, Any]) -> None:
        if self._streams is None:
            try:
                self._streams = await asyncio.open_unix_connection(self.socket_path)
            except OSError as exc:
                raise DirtyConnectionError(f"cannot reach the dirty arbiter: {exc}") from None
        self._streams[1].write(protocol.pack(protocol.REQUEST, next(_ids), payload))
        await self._streams[1].drain()

    async def execute_async(self, app_path: str, action: str, *args: Any,
                            **kwargs: Any) -> Any:
        """Call ``action`` of ``app_path``; its return value."""
        async with self._lock:
            try:
                await self._send(_request(app_path, action, args, kwargs))
                kind, body = await asyncio.wait_for(self._receive(), self.timeout)
            except TimeoutError:
                await self.close()
                raise DirtyTimeoutError(timeout=self.timeout) from None
            except (OSError, asyncio.IncompleteReadError) as exc:
                await self.close()
                raise DirtyProtocolError(f"Connection closed: {exc}") from None
            if kind == protocol.CHUNK:
                await self.close()  # the rest of the stream must not answer the next call
                raise DirtyError("Unknown response type: chunk (the action yields: call it "
                                 "with stream_async())")
            return _result(kind, body)

    async def stream_async(self, app_path: str, action: str, *args: Any,
                           **kwargs: Any) -> AsyncIterator[Any]:
        """Call an action that yields; its items as they come."""
        async with self._lock:
            done = False
            try:
                await self._send(_request(app_path, action, args, kwargs))
                while True:
                    try:
                        kind, body = await asyncio.wait_for(self._receive(), self.timeout)
                    except TimeoutError:
                        raise DirtyTimeoutError(timeout=self.timeout) from None
                    if kind == protocol.CHUNK:
                        yield body.get("data")
                        continue
                    done = True
                    if kind != protocol.END:
                        yield _result(kind, body)
                    return
            finally:
                if not done:
                    await self.close()  # left early, or failed: unread chunks go with it

    async def close(self) -> None:
        """Close the connection."""
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


_async_client: contextvars.ContextVar[AsyncDirtyClient | None] = contextvars.ContextVar(
    "greenserve_dirty_client", default=None)


async def get_dirty_client_async(timeout: float = 30.0) -> AsyncDirtyClient:
    """This task context's asyncio client, made on first use."""
    client = _async_client.get()
    if client is None:
        client = AsyncDirtyClient(timeout=timeout)
        _async_client.set(client)
    return client


async def close_dirty_client_async() -> None:
    """Close this task context's asyncio client."""
    client = _async_client.get()
    if client is not None:
        await client.close()
        _async_client.set(None)
