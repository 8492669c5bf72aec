"""The errors a request's stream raises when the client goes away or breaks the protocol.

Apart from :mod:`.streams` (which re-exports them) because they subclass ``OSError``, which
compiled (mypyc) classes cannot: ``streams.py`` is compiled in the optional build.
"""

from __future__ import annotations

from .protocol.events import ProtocolError


class ClientDisconnected(OSError):
    """The client went away (or broke the protocol) while the app was reading or writing."""


class BodyError(ClientDisconnected):
    """The request body broke the protocol (e.g. a bad chunk size) while the app read it."""

    def __init__(self, error: ProtocolError) -> None:
        super().__init__(error.reason)
        self.error = error
