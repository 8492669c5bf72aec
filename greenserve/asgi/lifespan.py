"""The ASGI lifespan protocol: startup before the worker accepts, shutdown on a graceful stop.

``--asgi-lifespan`` follows uvicorn and gunicorn: ``auto`` runs the protocol and treats an
app that raises before answering the startup event as not supporting it (Django's handler
does that); ``on`` treats that as a failure; ``off`` never runs it. In every mode an app that
sends ``lifespan.startup.failed`` stops the worker. ``state`` is the scope's dict that every
request scope receives a shallow copy of.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .scope import lifespan_scope

if TYPE_CHECKING:
    from .http import ASGIApp, Message

log = logging.getLogger("greenserve.error")


class LifespanFailed(Exception):
    """Startup failed; ``str(exc)`` is one line for the error log."""


class Lifespan:
    """One long-lived task running the app's lifespan scope on the worker's loop."""

    def __init__(self, app: ASGIApp, mode: str, state: dict[str, Any]) -> None:
        self.app = app
        self.mode = mode
        self.state = state
        #: False once the app showed (in auto mode) that it does not speak lifespan
        self.supported = True
        self.failure: str | None = None
        self._startup_sent = False
        self._started = asyncio.Event()
        self._shutdown_requested = asyncio.Event()
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the answer; LifespanFailed on failure."""
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._started.wait()
        if self.failure is not None:
            raise LifespanFailed(f"ASGI lifespan startup failed: {self.failure}")

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait until the app has finished with it."""
        if self._task is None or self._task.done():
            return
        self._shutdown_requested.set()
        await self._stopped.wait()

    async def _main(self) -> None:
        try:
            await self.app(lifespan_scope(self.state), self.receive, self.send)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._raised(exc)
        else:
            if not self._started.is_set():
                self.supported = False  # returned without a word: nothing to run
        finally:
            self._started.set()
            self._stopped.set()

    def _raised(self, exc: BaseException) -> None:
        if self._started.is_set():
            log.error("Exception in the ASGI lifespan protocol", exc_info=exc)
        elif self.mode == "auto":
            self.supported = False
            log.info("ASGI 'lifespan' protocol appears unsupported (%s: %s).",
                     type(exc).__name__, exc)
        else:
            log.error("Exception in the ASGI lifespan protocol", exc_info=exc)
            self.failure = f"{type(exc).__name__}: {exc}"

    async def receive(self) -> Message:
        if not self._startup_sent:
            self._startup_sent = True
            return {"type": "lifespan.startup"}
        await self._shutdown_requested.wait()
        return {"type": "lifespan.shutdown"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            if self._started.is_set():
                raise RuntimeError(f"Unexpected ASGI message {kind!r}: startup is over")
            if kind == "lifespan.startup.failed":
                self.failure = message.get("message") or "the app sent lifespan.startup.failed"
            self._started.set()
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            if not self._shutdown_requested.is_set():
                raise RuntimeError(f"Unexpected ASGI message {kind!r} before shutdown")
            if kind == "lifespan.shutdown.failed":
                log.error("ASGI lifespan shutdown failed: %s", message.get("message", ""))
            self._stopped.set()
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} in the lifespan scope")
