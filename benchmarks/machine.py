"""What every benchmark reports about the machine it ran on (its JSON line's ``machine`` object)."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any


def machine(*packages: str) -> dict[str, Any]:
    """CPU model, cores, system, memory and Python; with the versions of ``packages`` when given."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    described: dict[str, Any] = {
        "cpu_model": model,
        "processor": platform.processor(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "python": platform.python_version(),
    }
    for package in packages:
        try:
            described[package] = version(package)
        except PackageNotFoundError:
            described[package] = None
    return described


def vm(field: str) -> float:
    """A /proc/self/status figure of this process (VmRSS, VmHWM) in MiB; NaN where there is none."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")
