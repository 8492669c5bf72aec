"""``greenserve ctl``: one command to a master's control socket (``--control-socket``).

``greenserve ctl [-s PATH] show workers`` prints the answer's data as JSON and exits 0, or
prints the error and exits 1. It speaks gunicorn 25's protocol (:mod:`greenserve.control`),
so it also drives a gunicorn master, and gunicorn's ``gunicornc`` drives greenserve.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys

from .control import Framer, encode


def default_path() -> str:
    """gunicorn's default control socket: ``$XDG_RUNTIME_DIR/gunicorn.ctl``, else
    ``~/.gunicorn/gunicorn.ctl``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "gunicorn.ctl")
    return os.path.join(os.path.expanduser("~"), ".gunicorn", "gunicorn.ctl")


def request(path: str, command: str, timeout: float = 30.0) -> dict[str, object]:
    """Send ``command``; the answer message. OSError when the socket cannot be reached."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(encode({"id": 1, "command": command, "args": []}))
        framer = Framer()
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the master closed the connection without answering")
            messages = framer.feed(data)
            if messages:
                answer: dict[str, object] = messages[0]
                return answer


def build_parser() -> argparse.ArgumentParser:
    """The ``greenserve ctl`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="greenserve ctl", description="Send a command to a greenserve (or gunicorn) "
        "master's control socket, e.g. 'show workers', 'worker add 2', 'reload', 'help'.")
    parser.add_argument("-s", "--socket", default=default_path(), metavar="PATH",
                        help="the master's --control-socket (default: %(default)s)")
    parser.add_argument("command", nargs="+", help="the command and its arguments")
    return parser


def main(argv: list[str]) -> int:
    """The ``greenserve ctl`` command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        answer = request(args.socket, " ".join(args.command))
    except (OSError, ValueError) as exc:
        print(f"greenserve ctl: {args.socket}: {exc}", file=sys.stderr)
        return 1
    if answer.get("status") != "ok":
        print(f"greenserve ctl: {answer.get('error', 'no answer')}", file=sys.stderr)
        return 1
    print(json.dumps(answer.get("data", {}), indent=2, sort_keys=True))
    return 0
