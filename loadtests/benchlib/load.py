"""Other load on the machine, and each server's own CPU time, during a run (Linux /proc)."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")
#: a run during which other processes used more than this share of one CPU is "disturbed"
DISTURBED = 0.10
#: the machine counts as quiet, before a run, below this share of one CPU used by others
QUIET = 0.05


def _busy_ticks() -> int:
    """CPU time (user + nice + system) spent by everything on the machine, in ticks."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[1]) + int(fields[2]) + int(fields[3])


def _group_ticks(pgids: set[int]) -> dict[int, int]:
    """CPU time of the live processes in each of these process groups (ours), in ticks."""
    total = dict.fromkeys(pgids, 0)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(stat[2]) in total:
            total[int(stat[2])] += int(stat[11]) + int(stat[12])  # utime + stime
    return total


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuWatch:
    """CPU used during a run by each server, and by processes that are not ours.

    A server's own CPU time per request is a cost measure that other load barely moves. The
    machine has two CPUs, both busy during a run (server and wrk), so anything else that runs
    (a test suite, a build) takes CPU from them and lowers that run's requests/s: its share
    is the machine's busy time minus the servers' and wrk's own (kernel network work done in
    softirq context is left out on both sides), as a fraction of one CPU.
    """

    def __init__(self, pgids: set[int]) -> None:
        self.pgids = pgids  # each server is started as a session leader: pgid == its pid
        self.enabled = Path("/proc/stat").exists()  # Linux only; elsewhere nothing is measured
        self._t = 0.0
        self._busy, self._ours, self._kids = 0, dict.fromkeys(pgids, 0), 0.0

    def start(self) -> None:
        if not self.enabled:
            return
        self._t = time.monotonic()
        self._busy, self._ours = _busy_ticks(), _group_ticks(self.pgids)
        self._kids = _children_cpu()

    def stop(self) -> tuple[float, dict[int, float]]:
        """(others' share of one CPU, CPU seconds of each server) since ``start()``."""
        if not self.enabled:
            return 0.0, {}
        elapsed = time.monotonic() - self._t
        busy = (_busy_ticks() - self._busy) / HZ
        now = _group_ticks(self.pgids)
        servers = {g: (now[g] - self._ours[g]) / HZ for g in self.pgids}
        ours = sum(servers.values()) + _children_cpu() - self._kids  # wrk, once reaped
        share = max(0.0, busy - ours) / elapsed if elapsed > 0 else 0.0
        return share, servers

    def wait_quiet(self, budget: float, probe: float = 0.5) -> float:
        """Wait, up to ``budget`` seconds, until the machine is quiet; returns the time spent."""
        started = time.monotonic()
        announced = False
        while True:
            self.start()
            time.sleep(probe)
            spent = time.monotonic() - started
            if self.stop()[0] < QUIET or spent >= budget:
                return spent
            if not announced:
                print("(machine busy, waiting)", end=" ", flush=True)
                announced = True


@dataclass
class Budget:
    """Seconds the whole benchmark may add, waiting for a quiet machine and re-running."""

    left: float

    def spend(self, seconds: float) -> None:
        self.left = max(0.0, self.left - seconds)
