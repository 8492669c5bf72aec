"""What the control socket's commands do (:mod:`.control`), with gunicorn 25's names and
answers. Each runs in the master, between two turns of its loop."""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

from . import sockets

if TYPE_CHECKING:
    from .arbiter import Arbiter

#: ``show config``: gunicorn's keys (those greenserve has)
CONFIG_KEYS = (
    "bind", "workers", "worker_class", "threads", "timeout", "graceful_timeout", "keepalive",
    "max_requests", "max_requests_jitter", "worker_connections", "preload_app", "daemon",
    "pidfile", "proc_name", "reload", "control_socket", "control_socket_disable",
)
HELP = {
    "show all": "Show all processes (arbiter, web workers, dirty workers)",
    "show workers": "List HTTP workers with their status",
    "show dirty": "List dirty workers and apps",
    "show config": "Show current effective configuration",
    "show stats": "Show server statistics",
    "show listeners": "Show bound sockets",
    "worker add [N]": "Spawn N workers (default 1)",
    "worker remove [N]": "Remove N workers (default 1)",
    "worker kill <PID>": "Gracefully terminate specific worker",
    "dirty add [N]": "Spawn N dirty workers",
    "dirty remove [N]": "Remove N dirty workers",
    "reload": "Graceful reload (HUP)",
    "reopen": "Reopen log files (USR1)",
    "shutdown [graceful|quick]": "Shutdown server (TERM or INT)",
    "help": "Show this help",
}
_NO_DIRTY = {"success": False, "error": "Dirty arbiter not running"}


def run_command(arbiter: Arbiter, parts: list[str]) -> dict[str, Any]:
    """The data of the answer to ``parts`` (``["worker", "add", "2"]``); ValueError when
    the command is not one."""
    verb, rest = parts[0].lower(), parts[1:]
    what = rest[0].lower() if rest else ""
    if verb == "show":
        shows = {"all": show_all, "workers": show_workers, "dirty": show_dirty,
                 "config": show_config, "stats": show_stats, "listeners": show_listeners}
        if what not in shows:
            raise ValueError(f"Unknown show target: {what or '(none)'} "
                             "(all|workers|dirty|config|stats|listeners)")
        return shows[what](arbiter)
    if verb == "worker" and what in ("add", "remove", "kill"):
        return _worker(arbiter, what, rest[1:])
    if verb == "dirty" and what in ("add", "remove"):
        count = max(1, int(rest[1])) if len(rest) > 1 else 1
        answer = _dirty(arbiter, "manage", {"op": 1 if what == "add" else 2, "count": count})
        return answer if answer is not None else dict(_NO_DIRTY)
    signals = {"reload": (signal.SIGHUP, {"status": "reloading"}),
               "reopen": (signal.SIGUSR1, {"status": "reopening"})}
    if verb in signals:
        signum, data = signals[verb]
        os.kill(arbiter.pid, signum)  # handled on the master's next turn, as a signal is
        return data
    if verb == "shutdown":
        mode = what or "graceful"
        os.kill(arbiter.pid, signal.SIGINT if mode == "quick" else signal.SIGTERM)
        return {"status": "shutting_down", "mode": mode}
    if verb == "help":
        return {"commands": HELP}
    raise ValueError(f"Unknown command: {' '.join(parts)}")


def _worker(arbiter: Arbiter, action: str, args: list[str]) -> dict[str, Any]:
    if action == "kill":
        if not args:
            raise ValueError("Missing PID for worker kill")
        pid = int(args[0])
        if pid not in arbiter.WORKERS:
            return {"success": False, "error": f"Worker {pid} not found"}
        arbiter.retire(arbiter.WORKERS[pid])
        return {"success": True, "killed": pid}
    count = max(1, int(args[0])) if args else 1
    previous = arbiter.num_workers
    total = previous + count if action == "add" else max(1, previous - count)
    arbiter.num_workers = total  # the master's loop spawns or retires right after
    key = "added" if action == "add" else "removed"
    return {key: abs(total - previous), "previous": previous, "total": total}


def _workers(arbiter: Arbiter) -> list[dict[str, Any]]:
    found = []
    for pid, worker in arbiter.WORKERS.items():
        age, _, _ = worker.heartbeat.read()
        found.append({"pid": pid, "age": worker.age, "booted": worker.booted,
                      "aborted": worker.aborted_at is not None,
                      "last_heartbeat": round(age, 2)})
    return sorted(found, key=lambda w: w["age"])


def show_workers(arbiter: Arbiter) -> dict[str, Any]:
    workers = _workers(arbiter)
    return {"workers": workers, "count": len(workers)}


def _dirty(arbiter: Arbiter, kind: str, payload: Any = None) -> Any:
    dirty = getattr(arbiter, "dirty", None)
    return None if dirty is None else dirty.ask(kind, payload)


def show_dirty(arbiter: Arbiter) -> dict[str, Any]:
    status = _dirty(arbiter, "status")
    if status is None:
        return {"enabled": False, "pid": None, "workers": [], "apps": []}
    return {"enabled": True, **status}


def show_config(arbiter: Arbiter) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        value = getattr(arbiter.cfg, key, None)
        if isinstance(value, tuple):
            value = list(value)
        elif not isinstance(value, str | int | float | bool | list | dict | None):
            value = str(value)
        config[key] = value
    return config


def show_stats(arbiter: Arbiter) -> dict[str, Any]:
    stats = arbiter.stats
    return {
        "uptime": round(time.time() - stats["start_time"], 2),
        "pid": arbiter.pid,
        "workers_current": len(arbiter.WORKERS),
        "workers_target": arbiter.num_workers,
        "workers_spawned": stats["workers_spawned"],
        "workers_killed": stats["workers_killed"],
        "reloads": stats["reloads"],
        "dirty_arbiter_pid": getattr(arbiter.dirty, "pid", None) or None,
    }


def show_listeners(arbiter: Arbiter) -> dict[str, Any]:
    kinds = {socket.AF_UNIX: "unix", socket.AF_INET: "tcp", socket.AF_INET6: "tcp6"}
    listeners = [{"address": sockets.describe(sock), "fd": sock.fileno(),
                  "type": kinds.get(sock.family, "unknown")} for sock in arbiter.LISTENERS]
    return {"listeners": listeners, "count": len(listeners)}


def show_all(arbiter: Arbiter) -> dict[str, Any]:
    web = [{"pid": w["pid"], "type": "web", "age": w["age"], "booted": w["booted"],
            "last_heartbeat": w["last_heartbeat"]} for w in _workers(arbiter)]
    status = _dirty(arbiter, "status")
    dirty = [{"pid": w["pid"], "type": "dirty", "age": w["age"], "apps": w["apps"],
              "booted": w["booted"]} for w in (status or {}).get("workers", [])]
    return {
        "arbiter": {"pid": arbiter.pid, "type": "arbiter", "role": "master"},
        "web_workers": web,
        "web_worker_count": len(web),
        "dirty_arbiter": {"pid": status["pid"], "type": "dirty_arbiter"} if status else None,
        "dirty_workers": dirty,
        "dirty_worker_count": len(dirty),
    }
