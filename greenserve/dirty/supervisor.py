"""The master's side of dirty apps: start the dirty arbiter, restart it, stop it."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import time
from typing import Any

log = logging.getLogger("greenserve.error")
APP_LOAD_ERROR = 4
SOCKET_ENV = "GUNICORN_DIRTY_SOCKET"  # gunicorn's name: its own client finds us too


class DirtySupervisor:
    """Owned by the master (``arbiter.dirty``); its dirty arbiter is a child process."""

    def __init__(self, master: Any) -> None:
        self.master = master
        self.cfg = master.cfg
        self.pid = 0
        self.arbiter: Any = None
        self._started = 0.0

    @staticmethod
    def wanted(cfg: Any) -> bool:
        """Whether the settings ask for dirty workers at all."""
        return cfg.dirty_workers > 0 and bool(cfg.dirty_apps)

    def start(self) -> None:
        """Fork the dirty arbiter; HTTP workers forked after this find its socket in
        ``$GUNICORN_DIRTY_SOCKET``. An app that cannot be imported stops the master."""
        from .arbiter import DirtyArbiter

        tmpdir = tempfile.mkdtemp(prefix="greenserve-dirty-")
        try:
            self.arbiter = DirtyArbiter(self.cfg, tmpdir)
        except Exception as exc:
            shutil.rmtree(tmpdir, ignore_errors=True)
            log.error("Dirty app failed to load: %s: %s", type(exc).__name__, exc)
            raise SystemExit(APP_LOAD_ERROR) from None
        os.environ[SOCKET_ENV] = self.arbiter.socket_path
        self._started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                from .. import process

                process.set_title(f"greenserve: dirty-arbiter [{self.master.proc_name}]")
                signal.pthread_sigmask(signal.SIG_SETMASK, set())
                code = self.arbiter.run()
            except BaseException:
                log.exception("Dirty arbiter failed")
            finally:
                os._exit(code)
        self.pid = pid
        log.info("Dirty arbiter started (pid: %s), %d dirty workers", pid,
                 self.arbiter.num_workers)

    def exited(self, status: int) -> None:
        """The master reaped the dirty arbiter."""
        if not self.master._stopping:
            log.error("Dirty arbiter (pid:%s) exited with code %s", self.pid,
                      os.waitstatus_to_exitcode(status))
        self.pid = 0
        if self.arbiter is not None:
            shutil.rmtree(self.arbiter.tmpdir, ignore_errors=True)

    def ensure(self) -> None:
        """Restart a dirty arbiter that died (not more than once a second)."""
        if not self.pid and not self.master._stopping and \
                time.monotonic() - self._started > 1.0:
            self.start()

    def signal(self, sig: int) -> None:
        """Pass a signal on to the dirty arbiter (HUP: replace its workers)."""
        if self.pid:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def ask(self, kind: str, payload: Any = None) -> Any:
        """The dirty arbiter's answer to a STATUS or MANAGE message (None if it does not
        answer within a second: the master must not wait on it)."""
        import socket

        from . import protocol
        from .errors import DirtyProtocolError

        if not self.pid or self.arbiter is None:
            return None
        code = protocol.STATUS if kind == "status" else protocol.MANAGE
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1.0)
                sock.connect(self.arbiter.socket_path)
                channel = protocol.Channel(sock)
                channel.send(code, 0, payload)
                reply, _, body, _ = channel.receive()
        except (OSError, DirtyProtocolError):
            return None
        return body.get("result") if reply == protocol.RESPONSE else None

    def stop(self) -> None:
        """Stop the dirty arbiter and its workers (they get --dirty-graceful-timeout)."""
        if not self.pid:
            return
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + self.cfg.dirty_graceful_timeout + 2
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exited(status)
                return
            time.sleep(0.05)
        self.signal(signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        self.exited(status)
