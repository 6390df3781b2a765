"""How much CPU a process (an app server, an engine replica) uses: for tests that check that work
stops when nobody wants it any more."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) the process has used so far, from /proc."""
    after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(after_name[11]), int(after_name[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuTrace:
    """How a process's CPU time grew after a moment: (seconds since then, CPU seconds used since then)."""

    samples: list[tuple[float, float]]
    idle_from: float | None  # start of the first window in which it stayed idle; None: never idle

    def used_between(self, start: float, end: float) -> float:
        """CPU seconds used between two moments (seconds since the start of the trace)."""

        def at(moment: float) -> float:
            earlier = [cpu for t, cpu in self.samples if t <= moment]
            return earlier[-1] if earlier else 0.0

        return at(end) - at(start)


def watch_until_idle(
    pid: int, timeout: float = 30.0, window: float = 1.0, idle_share: float = 0.1, confirm: int = 2
) -> CpuTrace:
    """Sample the process's CPU time every ``window`` seconds until it has used less than
    ``idle_share`` of one core in ``confirm`` windows in a row (or ``timeout`` has passed)."""
    began, first = time.monotonic(), cpu_seconds(pid)
    samples = [(0.0, 0.0)]
    quiet = 0
    while time.monotonic() - began < timeout:
        time.sleep(window)
        now, used = time.monotonic() - began, cpu_seconds(pid) - first
        last_t, last_used = samples[-1]
        samples.append((now, used))
        quiet = quiet + 1 if used - last_used < idle_share * (now - last_t) else 0
        if quiet >= confirm:
            return CpuTrace(samples, samples[-1 - confirm][0])
    return CpuTrace(samples, None)
