"""Control settings (gunicorn 25's control socket, see ``greenserve/control.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .spec import at_least, checked, setting, to_bool, to_mode, to_opt_str


@dataclass(frozen=True, kw_only=True)
class ControlSettings:
    """Control."""

    SECTION: ClassVar[str] = "Control"

    control_socket: str | None = setting(
        "--control-socket", metavar="PATH", default=None, convert=to_opt_str,
        deviation="gunicorn 25.1+ makes one by default at $XDG_RUNTIME_DIR/gunicorn.ctl (or "
        "~/.gunicorn/gunicorn.ctl); greenserve only when a path is given",
        help="Make a control socket here, for gunicornc or `greenserve ctl`.",
        desc="""\
A Unix socket in the master that answers gunicorn 25's control commands (`show workers`,
`show stats`, `worker add 2`, `reload`, `shutdown`...; `greenserve ctl -s PATH help` lists
them), so gunicorn's `gunicornc -s PATH` works as well as `greenserve ctl -s PATH`.
gunicorn 25.1+ makes one by default (`$XDG_RUNTIME_DIR/gunicorn.ctl`, else
`~/.gunicorn/gunicorn.ctl`); greenserve only when this is given, so that two servers on a
machine never take each other's socket, and a server never writes to your home directory
unasked. A stale socket at the path is replaced; a master that stops removes it.""",
    )
    control_socket_mode: int = setting(
        "--control-socket-mode", metavar="INT", default=0o600,
        default_doc="384 (0o600)", convert=checked(to_mode, at_least(0)),
        help="The file mode of the control socket.",
        desc="""\
Who may connect: by default only the user the master runs as. A number with a leading zero
is octal (`0660`), as in gunicorn.""",
    )
    control_socket_disable: bool = setting(
        "--no-control-socket", kind="switch", default=False, convert=to_bool,
        help="Make no control socket, even with --control-socket.",
        desc="""\
gunicorn 25 creates a control socket unless this is given; greenserve creates one only with
`--control-socket`, and this switch wins over it (a config file that sets both for gunicorn
means the same here).""",
    )
