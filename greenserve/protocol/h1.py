"""HTTP/1.1 server connection whose request heads h11, the reference parser, double-checks.

Everything but the head parsing is shared with the httptools parser (``h1_base.py``): the
raw-bytes scanner and the field rules decide what is accepted, and bodies are framed by
greenserve itself. Here the head the scanner delimited is split into its parts, and a fresh
``h11.Connection`` parses it as a backstop for the RFC 9112 grammar. A rejection by h11
alone would mean a gap in ``policy.py`` (the corpus tests assert there is none).
"""

from __future__ import annotations

import h11

from .h1_base import BaseH1Connection, ParsedHead, split_head
from .policy import Rejection


class H11Connection(BaseH1Connection):
    """A :class:`~greenserve.protocol.base.ServerConnection` over h11."""

    def _parse_head(self, raw: bytes) -> ParsedHead | Rejection:
        """Split the head, once h11 agrees it is one."""
        rejection = _h11_validate(raw)
        if rejection is not None:
            return rejection
        return split_head(raw)


def _h11_validate(raw: bytes) -> Rejection | None:
    """Run the head through h11, the reference parser, for the RFC 9112 grammar."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=len(raw) + 1)
    conn.receive_data(raw)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError as exc:
        return Rejection(exc.error_status_hint, f"h11: {exc}")
    if not isinstance(event, h11.Request):
        return Rejection(400, "incomplete request head")
    return None
