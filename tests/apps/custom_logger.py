"""A gunicorn ``--logger-class`` of a user's own: JSON access lines, a marked error format."""

from __future__ import annotations

import json
from typing import Any

from gunicorn.glogging import Logger


class JsonLogger(Logger):  # type: ignore[misc]  # gunicorn has no type hints
    error_fmt = r"CUSTOM %(levelname)s %(message)s"

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        self.access_log.info(json.dumps({
            "method": req.method, "path": req.path, "query": req.query,
            "status": resp.status, "sent": resp.sent, "agent": environ.get("HTTP_USER_AGENT"),
            "micros": request_time.seconds * 1_000_000 + request_time.microseconds,
            "header": dict(req.headers).get("X-TRACE"),
        }))


class Broken(Logger):  # type: ignore[misc]
    def __init__(self, cfg: Any) -> None:
        raise RuntimeError("no logs today")
