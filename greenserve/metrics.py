"""StatsD metrics with gunicorn's names and wire format (``--statsd-host``).

Each process (master, workers) sends UDP (or unix datagram) lines to the StatsD server:

- per request, from the worker: ``gunicorn.request.duration`` (ms), ``gunicorn.requests`` and
  ``gunicorn.request.status.<code>``;
- from the master: ``gunicorn.workers`` (gauge, when the count changes) and, with
  ``--enable-backlog-metric``, ``gunicorn.backlog`` (the listeners' accept queues);
- per error-log record: ``gunicorn.log.critical``/``error``/``warning``/``exception``, and any
  record logged with ``extra={"metric": NAME, "value": V, "mtype": "gauge"|"counter"|
  "histogram"}`` (what gunicorn's hooks use).

The names keep gunicorn's ``gunicorn.`` prefix so that dashboards carry over; ``--statsd-prefix``
goes in front, ``--dogstatsd-tags`` after (``|#tags``). A send that fails is logged as a
warning and the metric dropped: metrics never hold up a request.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import socket

    from .config import Config

from .config.logging import StatsdAddress, parse_statsd_address

log = logging.getLogger("greenserve.error")


class StatsD:
    """One process's StatsD client (its socket is made on first use, after any fork)."""

    def __init__(self, address: StatsdAddress, prefix: str = "", tags: str = "") -> None:
        self.address = address
        # One dot between the prefix and the names, however many the setting had (gunicorn).
        stem = prefix.rstrip(".")
        self.prefix = f"{stem}." if stem else ""
        self.suffix = f"|#{tags}" if tags else ""
        self._sock: socket.socket | None = None
        self._pid = 0
        self._quiet_until = 0.0

    def gauge(self, name: str, value: float) -> None:
        self._send(f"{self.prefix}{name}:{value}|g")

    def increment(self, name: str, value: float = 1, rate: float = 1.0) -> None:
        self._send(f"{self.prefix}{name}:{value}|c|@{rate}")

    def histogram(self, name: str, value: float) -> None:
        self._send(f"{self.prefix}{name}:{value}|ms")

    def request(self, status: int | None, duration: float) -> None:
        """A finished request: its duration (seconds) and status."""
        self.histogram("gunicorn.request.duration", duration * 1000)
        self.increment("gunicorn.requests")
        if status:
            self.increment(f"gunicorn.request.status.{status}")

    def _send(self, line: str) -> None:
        try:
            sock = self._socket()
            sock.send((line + self.suffix).encode("utf-8"))
        except OSError:
            # gunicorn's warning, but at most once a minute: a StatsD server that is down
            # would otherwise add a traceback to the log for every request.
            now = time.monotonic()
            if now >= self._quiet_until:
                self._quiet_until = now + 60
                log.warning("Error sending message to statsd", exc_info=True,
                            extra={_QUIET: True})

    def _socket(self) -> socket.socket:
        import socket

        pid = os.getpid()
        if self._sock is None or self._pid != pid:
            if isinstance(self.address, str):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            else:
                family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)  # a full unix receiver drops the metric, never waits
            sock.connect(self.address)
            self._sock, self._pid = sock, pid
        return self._sock


#: a record attribute that keeps the handler from counting (its own send errors)
_QUIET = "greenserve_statsd_quiet"
_TYPES = {"gauge": "gauge", "counter": "increment", "histogram": "histogram"}


class MetricsHandler(logging.Handler):
    """Counts error-log records by level and sends the metrics records carry in ``extra``."""

    def __init__(self, client: StatsD) -> None:
        super().__init__(logging.DEBUG)
        self.client = client

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, _QUIET, False):
            return
        metric: Any = getattr(record, "metric", None)
        value: Any = getattr(record, "value", None)
        send = _TYPES.get(getattr(record, "mtype", None) or "")
        if metric and value is not None and send:
            getattr(self.client, send)(metric, value)
        level = record.levelno
        if level >= logging.CRITICAL:
            self.client.increment("gunicorn.log.critical")
        elif level >= logging.ERROR:
            kind = "exception" if record.exc_info else "error"
            self.client.increment(f"gunicorn.log.{kind}")
        elif level >= logging.WARNING:
            self.client.increment("gunicorn.log.warning")


#: this process's client, once ``configure`` ran with --statsd-host set
client: StatsD | None = None


def configure(cfg: Config, logger: logging.Logger) -> StatsD | None:
    """Set up this process's client from ``cfg`` and count ``logger``'s records."""
    global client
    client = None
    if cfg.statsd_host:
        address = parse_statsd_address(cfg.statsd_host)
        client = StatsD(address, cfg.statsd_prefix, cfg.dogstatsd_tags)
        logger.addHandler(MetricsHandler(client))
    return client


def backlog(listeners: list[Any]) -> int:
    """The connections waiting in the TCP listeners' accept queues (Linux; 0 elsewhere)."""
    import socket
    import struct

    total = 0
    for sock in listeners:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        except (OSError, AttributeError):
            continue
        # struct tcp_info: 8 one-byte fields, then u32s; the 5th (tcpi_unacked) is the
        # accept queue's length on a listening socket.
        total += struct.unpack_from("5I", info, 8)[4]
    return total
