"""Bind specs and listening sockets, in plain stdlib (the master binds, workers inherit).

``parse_bind`` is pure string work so that ``greenserve.config`` can validate ``--bind`` values
before gevent patches the process; the ``socket`` module is therefore imported inside the
functions that need it, never at module import time.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import socket

    from greenserve.config import Config

#: gunicorn's port when a bind gives only a host
DEFAULT_PORT = 8000
#: tries at binding an address that is in use, a second apart (gunicorn's 5)
BIND_ATTEMPTS = 5
# sun_path is 108 bytes on Linux including the terminating NUL (104 on the BSDs).
_MAX_UNIX_PATH = 107


class BindError(Exception):
    """A listening socket could not be created; the message is one line."""


@dataclass(frozen=True)
class TCPAddress:
    """``HOST:PORT``; ``host`` is empty for all IPv4 interfaces."""

    host: str
    port: int
    family: Literal["inet", "inet6"]

    def __str__(self) -> str:
        host = f"[{self.host}]" if self.family == "inet6" else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class UnixAddress:
    """``unix:PATH``."""

    path: str

    def __str__(self) -> str:
        return f"unix:{self.path}"


@dataclass(frozen=True)
class FDAddress:
    """``fd://N``: an already-open listening socket (systemd socket activation, re-exec)."""

    fd: int

    def __str__(self) -> str:
        return f"fd://{self.fd}"


BindAddress = TCPAddress | UnixAddress | FDAddress


def parse_bind(spec: str) -> BindAddress:
    """Parse one ``--bind`` value, raising ValueError with a one-line message.

    Accepted forms, as gunicorn: ``HOST``, ``HOST:PORT``, ``:PORT`` (all interfaces),
    ``[IPv6]:PORT``, ``[IPv6]``, ``unix:PATH`` (or ``unix://PATH``), ``fd://N``, and any of the
    TCP forms prefixed with ``tcp://``.
    """
    text = spec.strip()
    for prefix in ("unix://", "unix:"):
        if text.startswith(prefix):
            return _unix(text[len(prefix):], spec)
    if text.startswith("fd://"):
        return _fd(text[len("fd://"):], spec)
    text = text.removeprefix("tcp://")
    if text.startswith("["):
        return _bracketed(text, spec)
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(DEFAULT_PORT)
    if ":" in host:
        raise ValueError(f"{spec!r}: write IPv6 addresses in brackets, e.g. '[::1]:8000'")
    # An empty host means every interface; binding to "" does that for AF_INET.
    return TCPAddress(host.lower(), _port(port, spec), "inet")


def _unix(path: str, spec: str) -> UnixAddress:
    if not path:
        raise ValueError(f"{spec!r}: missing unix socket path")
    if len(os.fsencode(path)) > _MAX_UNIX_PATH:
        raise ValueError(f"{spec!r}: unix socket path is longer than {_MAX_UNIX_PATH} bytes")
    return UnixAddress(path)


def _fd(text: str, spec: str) -> FDAddress:
    if not text.isdigit():
        raise ValueError(f"{spec!r} is not a valid file descriptor")
    return FDAddress(int(text))


def _bracketed(text: str, spec: str) -> TCPAddress:
    host, sep, rest = text[1:].partition("]")
    if not sep or (rest and not rest.startswith(":")):
        raise ValueError(f"{spec!r}: malformed bracketed address")
    try:
        ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        raise ValueError(f"{spec!r}: {host!r} is not an IPv6 address") from None
    port = rest[1:] if rest else str(DEFAULT_PORT)
    return TCPAddress(host.lower(), _port(port, spec), "inet6")


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ValueError(f"{spec!r}: {text!r} is not a valid port number")
    return int(text)


# -- creating sockets --------------------------------------------------------------------------
def bind_all(cfg: Config, *, attempts: int = BIND_ATTEMPTS, delay: float = 1.0,
             fds: list[int] | None = None) -> list[socket.socket]:
    """Create one listening socket per ``cfg.bind`` entry, closing them all on failure.

    ``fds`` (systemd's socket activation) or ``GUNICORN_FD`` (a USR2 re-exec) are listeners
    that are already open: they are served instead of ``cfg.bind``.

    An address in use is tried ``attempts`` times, ``delay`` seconds apart, as gunicorn does
    (5 times, a second apart): a restart whose old process still holds the port for a moment
    then starts. Raises :class:`BindError` (one line: ``cannot bind 127.0.0.1:8000: [Errno
    98] ...``).
    """
    inherited = _inherited_fds() or fds
    if inherited:
        return [bind_one(FDAddress(fd), backlog=cfg.backlog, reuse_port=False) for fd in inherited]
    bound: list[tuple[BindAddress, socket.socket]] = []
    try:
        for spec in cfg.bind:
            address = parse_bind(spec)
            sock = _bind_retrying(address, cfg, attempts, delay)
            bound.append((address, sock))
    except BaseException:
        for address, sock in bound:
            close(sock, unlink=isinstance(address, UnixAddress))
        raise
    return [sock for _, sock in bound]


def _bind_retrying(address: BindAddress, cfg: Config, attempts: int,
                   delay: float) -> socket.socket:
    for attempt in range(1, attempts + 1):
        try:
            return bind_one(address, backlog=cfg.backlog, reuse_port=cfg.reuse_port)
        except BindError as exc:
            cause = exc.__cause__
            if attempt == attempts or not (isinstance(cause, OSError)
                                           and cause.errno == errno.EADDRINUSE):
                raise
            import logging  # not at module level: config imports this module before patching

            log = logging.getLogger("greenserve.error")
            log.error("Connection in use: %s", address)
            log.debug("Retrying in %g second%s.", delay, "" if delay == 1 else "s")
            time.sleep(delay)
    raise AssertionError("unreachable")  # the last attempt returns or raises


def fd_binds(cfg: Config) -> set[int]:
    """The fds that ``fd://N`` entries of ``cfg.bind`` name."""
    return {address.fd for address in map(parse_bind, cfg.bind)
            if isinstance(address, FDAddress)}


def _inherited_fds() -> list[int]:
    """Listeners handed over by the master that re-exec'd us (USR2): ``GUNICORN_FD``.

    The variable is removed once read, so a later re-exec or a worker does not reuse it.
    """
    value = os.environ.pop("GUNICORN_FD", "")
    return [int(fd) for fd in value.split(",") if fd.strip().isdigit()]


def bind_one(address: BindAddress, *, backlog: int, reuse_port: bool) -> socket.socket:
    """Create, bind and listen on one address."""
    try:
        if isinstance(address, FDAddress):
            return _from_fd(address, backlog)
        if isinstance(address, UnixAddress):
            return _bind_unix(address, backlog)
        return _bind_tcp(address, backlog, reuse_port)
    except OSError as exc:
        raise BindError(f"cannot bind {address}: {exc}") from exc


def _bind_tcp(address: TCPAddress, backlog: int, reuse_port: bool) -> socket.socket:
    import socket

    family = socket.AF_INET6 if address.family == "inet6" else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            # Not on every platform; gunicorn also silently skips it there.
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # "[::]:80" must not also claim 0.0.0.0:80, so a separate IPv4 bind can coexist.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address.host, address.port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    # Forked workers inherit it regardless; only an exec (a future USR2 re-exec) would need
    # it inheritable, and that code will flip the flag itself.
    sock.set_inheritable(False)
    return sock


def _bind_unix(address: UnixAddress, backlog: int) -> socket.socket:
    import socket

    _remove_stale(address.path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(address.path)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def _remove_stale(path: str) -> None:
    """Remove a socket file that nothing listens on any more; refuse to touch other files."""
    import socket

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EEXIST, f"{path!r} exists and is not a socket")
    # Unlike a plain unlink, probe first: a live server's socket must not be stolen.
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))


def _from_fd(address: FDAddress, backlog: int) -> socket.socket:
    import socket

    sock = socket.socket(fileno=address.fd)
    try:
        if sock.type != socket.SOCK_STREAM:
            raise OSError(errno.ENOTSOCK, "not a stream socket")
        sock.listen(backlog)  # harmless when the fd already listens; required when it does not
    except BaseException:
        sock.detach()  # the fd is not ours to close on failure
        raise
    sock.set_inheritable(False)
    return sock


def reuse_port_twin(listener: socket.socket, backlog: int) -> socket.socket | None:
    """A worker's own SO_REUSEPORT listener on the same TCP address (``--reuse-port``).

    The kernel then spreads new connections over the workers' sockets instead of waking
    every worker on one shared queue. None for unix sockets or without SO_REUSEPORT.
    """
    import socket

    if listener.family not in (socket.AF_INET, socket.AF_INET6) or not hasattr(
        socket, "SO_REUSEPORT"
    ):
        return None
    sock = socket.socket(listener.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if listener.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(listener.getsockname()[:2])
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def close(sock: socket.socket, *, unlink: bool) -> None:
    """Close a listener; with ``unlink``, also remove the unix socket file it is bound to."""
    path = sock.getsockname() if unlink else None
    sock.close()
    if isinstance(path, str) and path:
        try:
            os.unlink(path)
        except OSError:
            pass


def describe(sock: socket.socket) -> str:
    """How a listener is shown in the ``Listening at:`` line: ``http://HOST:PORT``/``unix:PATH``."""
    import socket

    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{name}"
    if sock.family == socket.AF_INET6:
        return f"http://[{name[0]}]:{name[1]}"
    return f"http://{name[0]}:{name[1]}"
