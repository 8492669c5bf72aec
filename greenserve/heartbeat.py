"""Worker liveness shared with the master through a small anonymous shared mapping.

Each worker gets its own page-sized ``mmap`` created by the master *before* the fork, so no
file, fd or ``fchmod`` is involved (gunicorn's tmp-file heartbeat stalls on slow disks, which
is why it recommends /dev/shm). The worker's heartbeat greenlet writes the monotonic time
(system-wide on Linux, so comparable across processes), a ready flag, and a short text
saying what the worker is doing; a blocked hub stops writing, and the master sees the age.
"""

from __future__ import annotations

import mmap
import struct
import time

_HEAD = struct.Struct("=dBH")  # last beat, ready flag, length of the activity text
_TEXT_MAX = 1024


class Heartbeat:
    """One worker's slot; written by the worker, read by the master."""

    def __init__(self) -> None:
        self._mem = mmap.mmap(-1, _HEAD.size + _TEXT_MAX)
        self._started = time.monotonic()

    def beat(self, *, ready: bool = True, activity: str = "") -> None:
        """Record that the worker's hub is alive, and what it is busy with."""
        text = activity.encode("utf-8", "replace")[:_TEXT_MAX]
        self._mem[_HEAD.size : _HEAD.size + len(text)] = text
        _HEAD.pack_into(self._mem, 0, time.monotonic(), 1 if ready else 0, len(text))

    def read(self) -> tuple[float, bool, str]:
        """(seconds since the last beat, ready, activity) as the master sees them."""
        last, ready, length = _HEAD.unpack_from(self._mem, 0)
        text = self._mem[_HEAD.size : _HEAD.size + length].decode("utf-8", "replace")
        if not last:
            return time.monotonic() - self._started, False, text
        return time.monotonic() - last, bool(ready), text

    def close(self) -> None:
        """Release the mapping (the master does this after reaping the worker)."""
        self._mem.close()
