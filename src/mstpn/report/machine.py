"""Where a report was made: CPU, cores, load, Python and torch versions, date, git commit."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """``<short hash>`` of HEAD, with ``+ uncommitted changes`` when the tree is dirty; or why not."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        head = git("rev-parse", "--short=12", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return "not available (not a git checkout)"
    try:
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        dirty = False
    return head + (" + uncommitted changes" if dirty else "")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, or 'n/a' where the OS has none."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine_facts(cwd: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """Key/value facts about this machine and checkout, for a report's preamble."""
    import torch

    from mstpn import __version__

    cores = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    threads = os.environ.get("OMP_NUM_THREADS")
    return [
        ("date", _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")),
        ("CPU", cpu_model()),
        ("cores", f"{cores} logical ({usable} usable by this process)"),
        ("load average (1/5/15 min) at start", load_average()),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("torch", f"{torch.__version__} ({torch.get_num_threads()} threads"
                  + (f", OMP_NUM_THREADS={threads}" if threads else "") + ")"),
        ("GPU", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none used"),
        ("mstpn", __version__),
        ("git commit", git_commit(cwd or Path(__file__).resolve().parent)),
    ]
