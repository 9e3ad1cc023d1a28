"""Where a run came from: the code (dlcli's version, the git commit and whether files were changed),
the software (Python, torch, numpy), the machine (CPU, threads, GPU) and the command line.

Two runs with the same config can still differ by any of these; a run folder's environment.json
(`dlcli.layout.ENVIRONMENT`) keeps them, and `dlcli diff` shows the ones that differ.

Collected once per process (`environment` is cached): a sweep of a thousand runs pays for it once.
Nothing here starts a process — git is read from the `.git` files (`dlcli.components.repository`
says how, and what its dirty flag means). The torch thread count is the one when first collected (a
run's environment.json has the count it ran with: `train.threads`, dlcli.components.threads).
With CUDA available, collecting initializes it in this process (the GPU's name and memory).
"""
from __future__ import annotations

import functools
import os
import platform
import re
import socket
import sys
from pathlib import Path
from typing import Any

import dlcli
from dlcli.components.repository import repository_state


@functools.lru_cache(maxsize=1)
def environment() -> dict[str, Any]:
    """The provenance of runs made by this process, collected on the first call; later calls return
    the same mapping (copy it before changing it).

    Keys: dlcli_version, python_version, platform, host, torch_version, numpy_version, cpu, cpu_count,
    torch_threads, gpu (name, memory_gib, count, capability, cuda_version, driver_cuda_version, driver_version; None
    without CUDA), git (root, commit, branch, dirty of the working directory's repository; None
    outside one), command (sys.argv).
    """
    import numpy
    import torch

    return {
        "dlcli_version": dlcli.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "torch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu(),
        "git": repository_state(Path.cwd()) or None,
        "command": list(sys.argv),
    }


def config_repository(path: str | Path) -> dict[str, Any]:
    """{"root", "commit", "branch", "dirty"} of the git repository holding a config file, or {} when
    it is in none (read once per repository and process)."""
    return repository_state(Path(path).parent)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            for line in file:
                found = re.match(r"(model name|Hardware|cpu model)\s*:\s*(.+)", line)
                if found:
                    return found.group(2).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu() -> dict[str, Any] | None:
    """The current CUDA device: name, memory, how many there are, compute capability, the CUDA version
    torch was built with, the newest the driver runs, and the NVIDIA driver's version where the system
    says it; None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    properties = torch.cuda.get_device_properties(torch.cuda.current_device())
    found = {"name": properties.name, "memory_gib": round(properties.total_memory / 2**30, 1),
             "count": torch.cuda.device_count(), "capability": f"{properties.major}.{properties.minor}",
             "cuda_version": torch.version.cuda}
    driver_api = getattr(torch._C, "_cuda_getDriverVersion", None)  # 12040: the CUDA the driver runs
    if driver_api is not None:
        found["driver_cuda_version"] = f"{driver_api() // 1000}.{driver_api() % 1000 // 10}"
    driver = nvidia_driver_version()
    return found | ({"driver_version": driver} if driver else {})


def nvidia_driver_version() -> str | None:
    """The NVIDIA kernel driver's version (`550.54.15`) from /proc (Linux); None where it is not there."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = re.search(r"Kernel Module(?: for \S+)?\s+([0-9][0-9.]+)", text)
    return found.group(1) if found else None
