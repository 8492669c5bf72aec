"""The ``Date`` header value, formatted at most once per second."""

from __future__ import annotations

import time
from email.utils import formatdate

_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """The current time in IMF-fixdate form (RFC 9110 5.6.7), cached for the second."""
    global _cache
    now = int(time.time())
    if _cache[0] != now:
        _cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _cache[1]
