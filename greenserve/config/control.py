"""Control settings (gunicorn 25's control socket)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .spec import setting, to_bool


@dataclass(frozen=True, kw_only=True)
class ControlSettings:
    """Control."""

    SECTION: ClassVar[str] = "Control"

    control_socket_disable: bool = setting(
        "--no-control-socket", kind="switch", default=False, convert=to_bool,
        help="Accepted for gunicorn compatibility: greenserve makes no control socket.",
        desc="""\
gunicorn 25 creates a control socket for `gunicornc` unless this is given. greenserve has no
control socket (signals do that job, see the process model), so there is nothing to turn
off and no warning. `--control-socket` and `--control-socket-mode` are accepted with one.""",
    )
