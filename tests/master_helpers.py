"""Helpers for tests that watch the master and its worker processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import requests

T = TypeVar("T")


def children(pid: int) -> set[int]:
    """The live child PIDs of ``pid`` (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(p) for p in text.split()}


def wait_for(condition: Callable[[], T], timeout: float = 10.0, step: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)


def worker_pids_seen(url: str, tries: int = 40) -> set[int]:
    """PIDs that answered ``/`` over fresh connections."""
    seen = set()
    for _ in range(tries):
        with requests.Session() as session:
            seen.add(int(session.get(url + "/", timeout=10).text))
    return seen


def title(pid: int) -> str:
    """The process title (what ps shows) of ``pid``."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
