"""Server Socket settings: where greenserve listens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from greenserve.sockets import parse_bind

from .spec import at_least, checked, each, setting, to_int, to_str_tuple


def _valid_bind(spec: str) -> None:
    parse_bind(spec)  # raises ValueError with a one-line message


@dataclass(frozen=True, kw_only=True)
class SocketSettings:
    """Server Socket."""

    SECTION: ClassVar[str] = "Server Socket"

    bind: tuple[str, ...] = setting(
        "-b", "--bind", kind="append", metavar="ADDRESS",
        default=("127.0.0.1:8000",),
        default_doc="['127.0.0.1:8000'] (['0.0.0.0:$PORT'] if $PORT set)",
        env="PORT", env_map=lambda port: [f"0.0.0.0:{port}"],
        convert=checked(to_str_tuple, each(_valid_bind)),
        help="The socket to bind; repeat the flag to listen on several.",
        desc="""\
A string of the form `HOST`, `HOST:PORT`, `:PORT` (all IPv4 interfaces), `[IPv6]:PORT`,
`unix:PATH` or `fd://FD` (an already-listening socket, e.g. from systemd). A host without a
port uses port 8000. Port 0 asks the kernel for a free port. If the `PORT` environment variable
is set, the default becomes `['0.0.0.0:$PORT']` (as on Heroku-style platforms).
IPv6 listeners are V6ONLY, so `[::]:8000` and `0.0.0.0:8000` can both be bound.""",
    )
    backlog: int = setting(
        "--backlog", metavar="INT", default=2048,
        convert=checked(to_int, at_least(0)),
        help="The maximum number of pending connections.",
        desc="""\
The `listen()` backlog: connections the kernel queues before greenserve accepts them.
The kernel caps it (`net.core.somaxconn` on Linux).""",
    )
