"""The control socket (``--control-socket``): the framing, then a real master driven by
``greenserve ctl`` and by gunicorn's own ``gunicornc``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from master_helpers import wait_for

from greenserve.control import MAX_MESSAGE, Framer, encode

GUNICORNC = Path(sys.executable).parent / "gunicornc"


def ctl(path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "greenserve", "ctl", "-s", str(path),
                           *command], capture_output=True, text=True, timeout=60)


def data(path: Path, *command: str) -> dict:  # type: ignore[type-arg]
    result = ctl(path, *command)
    assert result.returncode == 0, result.stderr
    answer: dict = json.loads(result.stdout)  # type: ignore[type-arg]
    return answer


def test_framing_in_pieces_and_together() -> None:
    one, two = encode({"id": 1, "command": "help"}), encode({"id": 2, "command": "x"})
    framer = Framer()
    got = []
    for byte in one + two:
        got += framer.feed(bytes([byte]))
    assert [m["id"] for m in got] == [1, 2]
    assert [m["id"] for m in Framer().feed(one + two)] == [1, 2]
    with pytest.raises(ValueError, match="too large"):
        Framer().feed((MAX_MESSAGE + 1).to_bytes(4, "big"))
    with pytest.raises(ValueError):
        Framer().feed(b"\x00\x00\x00\x02{x")


def test_greenserve_ctl_drives_a_master(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "run" / "gs.ctl"
    server = serve("--control-socket", str(path), "wsgi_apps:routes")
    wait_for(lambda: path.exists())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    workers = wait_for(lambda: (w := data(path, "show", "workers"))["workers"][0]["booted"]
                       and w)
    assert workers["count"] == 1
    assert data(path, "worker", "add", "2") == {"added": 2, "previous": 1, "total": 3}
    wait_for(lambda: sum(w["booted"] for w in data(path, "show", "workers")["workers"]) == 3)
    assert data(path, "worker", "remove", "5")["total"] == 1  # never below one
    wait_for(lambda: data(path, "show", "workers")["count"] == 1)  # the oldest went first
    last = data(path, "show", "workers")["workers"][0]["pid"]
    assert data(path, "worker", "kill", str(last)) == {"success": True, "killed": last}
    wait_for(lambda: [w["pid"] for w in data(path, "show", "workers")["workers"]] not in
             ([last], []))  # replaced
    assert data(path, "worker", "kill", "1")["success"] is False  # not a worker
    stats = data(path, "show", "stats")
    assert stats["workers_spawned"] == 4 and stats["workers_killed"] == 3
    assert stats["workers_target"] == 1 and stats["dirty_arbiter_pid"] is None
    listeners = data(path, "show", "listeners")["listeners"]
    assert listeners[0]["address"] == server.url and listeners[0]["type"] == "tcp"
    assert data(path, "show", "config")["control_socket"] == str(path)
    assert data(path, "dirty", "add")["success"] is False
    assert "worker add [N]" in data(path, "help")["commands"]
    assert data(path, "reload") == {"status": "reloading"}
    wait_for(lambda: data(path, "show", "stats")["reloads"] == 1)
    refused = ctl(path, "show", "nothing")
    assert refused.returncode == 1
    assert refused.stderr.startswith("greenserve ctl: Invalid argument: Unknown show target")
    assert data(path, "shutdown") == {"status": "shutting_down", "mode": "graceful"}
    assert server.proc.wait(20) == 0
    assert not path.exists()  # removed by the master as it stopped


@pytest.mark.skipif(not GUNICORNC.exists(), reason="gunicorn's gunicornc is not installed")
def test_gunicornc_drives_greenserve(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "gs.ctl"
    serve("--control-socket", str(path), "--control-socket-mode", "0660", "wsgi_apps:routes")
    wait_for(lambda: path.exists())
    assert stat.S_IMODE(path.stat().st_mode) == 0o660

    def gunicornc(command: str) -> dict:  # type: ignore[type-arg]
        result = subprocess.run([str(GUNICORNC), "-s", str(path), "-c", command, "-j"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        answer: dict = json.loads(result.stdout)  # type: ignore[type-arg]
        return answer

    assert gunicornc("show workers")["count"] == 1
    assert gunicornc("worker add 1")["total"] == 2
    wait_for(lambda: gunicornc("show all")["web_worker_count"] == 2)
    assert gunicornc("show stats")["workers_spawned"] == 2


def test_no_control_socket_wins(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "gs.ctl"
    server = serve("--control-socket", str(path), "--no-control-socket", "wsgi_apps:routes")
    assert "Control socket" not in server.logs() and not path.exists()
    result = ctl(path, "show", "workers")
    assert result.returncode == 1 and str(path) in result.stderr


def _fd_links(pid: int) -> set[str]:
    links = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            links.add(os.readlink(fd))
        except FileNotFoundError:  # closed between the listing and the read
            pass
    return links


def test_the_socket_is_the_masters_alone(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Workers close it after the fork: only the master holds the listening socket."""
    path = tmp_path / "gs.ctl"
    server = serve("--control-socket", str(path), "-w", "2", "wsgi_apps:routes")
    wait_for(lambda: data(path, "show", "workers")["count"] == 2)
    rows = [line.split() for line in Path("/proc/net/unix").read_text().splitlines()[1:]]
    inode = next(row[6] for row in rows if len(row) >= 8 and row[7] == str(path))
    assert f"socket:[{inode}]" in _fd_links(server.proc.pid)
    for worker in data(path, "show", "workers")["workers"]:
        assert f"socket:[{inode}]" not in _fd_links(worker["pid"])


def test_idle_and_excess_clients_are_let_go(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The server object on a real socket, in process: a client silent past the idle
    timeout is disconnected, and clients past MAX_CLIENTS are refused."""
    import socket

    from greenserve import control

    server = control.ControlServer(None, str(tmp_path / "c.ctl"), 0o600)  # type: ignore[arg-type]
    assert server.open()
    listener = server.fds()[0]
    clients = []
    for _ in range(control.MAX_CLIENTS + 1):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(tmp_path / "c.ctl"))
        sock.settimeout(5)
        clients.append(sock)
        server.handle([listener])
    assert len(server.clients) == control.MAX_CLIENTS
    assert clients[-1].recv(1) == b""  # the one too many was closed
    monkeypatch.setattr(control, "IDLE_TIMEOUT", -1.0)
    server.handle([])
    assert server.clients == {} and clients[0].recv(1) == b""
    server.close()
    assert not (tmp_path / "c.ctl").exists()
    for sock in clients:
        sock.close()
