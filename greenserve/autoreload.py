"""``--reload``: a worker watches its code and exits when a file changes (development).

Once a second the worker compares the modification times of every imported module's file,
of ``--reload-extra-file`` patterns and of files it was told to watch (the file of a
``SyntaxError`` that kept the app from loading) with the times it first saw. On a change it
logs ``Worker reloading: FILE modified`` and stops at once, as gunicorn's worker does; the
master starts a new worker, which imports the code again.
"""

from __future__ import annotations

import glob
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gevent

#: seconds between two checks (gunicorn's reloader interval)
INTERVAL = 1.0


class CodeWatcher:
    """Finds the first watched file whose modification time changed since it was first seen."""

    def __init__(self, patterns: Iterable[str] = (), files: Iterable[str] = ()) -> None:
        self.patterns = tuple(patterns)
        self.files = set(files)
        self._seen: dict[str, float] = {}

    def paths(self) -> Iterator[str]:
        """Every file watched now: imported modules, extra files, extra patterns."""
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            if isinstance(path, str):
                yield path
        yield from self.files
        for pattern in self.patterns:
            # Expanded on every check: a file created later matches too.
            yield from glob.glob(pattern, recursive=True)

    def changed(self) -> str | None:
        """The first file modified since it was first seen, or None."""
        seen = self._seen
        for path in self.paths():
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue  # gone, or never a file (a namespace package, a zip member)
            if seen.setdefault(path, mtime) != mtime:
                return path
        return None

    def run(self, on_change: Callable[[str], None], interval: float = INTERVAL) -> None:
        """Check every ``interval`` seconds (a greenlet); call ``on_change`` once, then end."""
        self.changed()  # the times the files have now
        while True:
            gevent.sleep(interval)
            path = self.changed()
            if path is not None:
                on_change(path)
                return


def syntax_error_app(error: SyntaxError) -> Callable[..., Any]:
    """A WSGI app answering every request with 500 and the traceback of ``error``: what a
    worker serves under ``--reload`` while the code does not compile (gunicorn's behaviour)."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    body = text.encode("utf-8", "replace")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("500 Internal Server Error", [
            ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    return app
