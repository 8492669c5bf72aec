"""``--log-syslog``: the error log (and the access log) also go to syslog, as gunicorn's do.

The lines look like gunicorn's, so syslog filters written for them keep matching:
``gunicorn.<prefix>.error: [<pid>] <message>`` (and ``.access``), where the prefix is
``--log-syslog-prefix`` or the process name with ``:`` made ``.``.
"""

from __future__ import annotations

import logging
import logging.handlers
import socket
import sys
from typing import TYPE_CHECKING

from .config.logging import SYSLOG_FACILITIES, parse_syslog_address
from .config.naming import process_name
from .logconfig import LogConfigError

if TYPE_CHECKING:
    from .config import Config

FORMAT = "[%(process)d] %(message)s"


def add_handlers(cfg: Config, error: logging.Logger, access: logging.Logger) -> bool:
    """Add the syslog handlers ``cfg`` asks for; True when access lines go to syslog."""
    if not cfg.syslog:
        return False
    prefix = cfg.syslog_prefix or process_name(cfg).replace(":", ".")
    error.addHandler(_handler(cfg, f"gunicorn.{prefix}.error"))
    if cfg.disable_redirect_access_to_syslog:
        return False
    access.addHandler(_handler(cfg, f"gunicorn.{prefix}.access"))
    access.setLevel(logging.INFO)
    access.propagate = False
    return True


class _SysLogHandler(logging.handlers.SysLogHandler):
    """Says once on stderr that syslog is unreachable, instead of a traceback a record."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            sys.stderr.write(f"greenserve: syslog at {self.address!r} is unreachable; "
                             "its lines are dropped\n")


def _handler(cfg: Config, tag: str) -> logging.Handler:
    address, kind = parse_syslog_address(cfg.syslog_addr)
    socktype = socket.SOCK_STREAM if kind == "stream" else socket.SOCK_DGRAM
    try:
        if isinstance(address, str):  # SysLogHandler would only fail at each record
            with socket.socket(socket.AF_UNIX, socktype) as probe:
                probe.connect(address)
        handler = _SysLogHandler(
            address=address, facility=SYSLOG_FACILITIES[cfg.syslog_facility.lower()],
            socktype=socktype)
    except OSError as exc:
        raise LogConfigError(f"--log-syslog-to {cfg.syslog_addr}: {exc}") from None
    handler.setFormatter(logging.Formatter(f"{tag}: {FORMAT}"))
    return handler
