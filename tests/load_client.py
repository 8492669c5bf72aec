"""A small bounded load generator for restart tests: threads issuing requests, counting."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests


@dataclass
class Load:
    """Runs ``threads`` clients against ``url`` until :meth:`stop` (or ``limit`` seconds)."""

    url: str
    threads: int = 8
    keep_alive: bool = True
    limit: float = 60.0
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    pids: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for i in range(self.threads):
            # Half the clients reuse connections, half open a new one per request.
            reuse = self.keep_alive and i % 2 == 0
            thread = threading.Thread(target=self._run, args=(reuse,), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def _run(self, reuse: bool) -> None:
        deadline = time.monotonic() + self.limit
        session = requests.Session()
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                self._one(session if reuse else None)
        finally:
            session.close()

    def _one(self, session: requests.Session | None) -> None:
        try:
            if session is None:
                resp = requests.get(self.url, timeout=10, headers={"Connection": "close"})
            else:
                resp = session.get(self.url, timeout=10)
            good = resp.status_code == 200
            detail = f"status {resp.status_code}"
            body = resp.text
        except requests.RequestException as exc:
            good, detail, body = False, repr(exc), ""
        with self._lock:
            if good:
                self.ok += 1
                self.pids.add(body)
            else:
                self.failures.append(detail)

    def stop(self) -> Load:
        self._stop.set()
        for thread in self._workers:
            thread.join(15)
        return self
