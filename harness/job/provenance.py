"""What produced a run: code version, lock file, library versions, machine, command."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from harness.job.process import subnormals_flushed

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout: git commit, lock file
PACKAGES = ("torch", "gymnasium", "mujoco", "numpy", "scipy", "pandas", "rliable", "snakemake")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state() -> dict[str, Any]:
    """The code version: commit and whether tracked files differ from it."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
    }


def collect(device: torch.device, config: dict[str, Any]) -> dict[str, Any]:
    return {
        **git_state(),
        "lock_file_sha256": sha256_file(REPO_ROOT / "requirements.lock"),
        "packages": {p: _version(p) for p in PACKAGES},
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        # torch's vectorised kernels (AVX2, AVX512, ...; ATEN_CPU_CAPABILITY overrides): the
        # same seed on the same CPU model gives other numbers under another one (docs/results.md)
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "subnormals_flushed": subnormals_flushed(),  # harness/job/process.py says why
        "device": str(device),
        "command": sys.argv,
        "config_sha256": config_hash(config),
        "start_time": now(),
    }


# What a resumed run keeps of each earlier process: provenance.json is rewritten by every
# process that trains the run, so without this a run resumed under other code would name
# only the last commit. `resumed_at_step` is the env step of the checkpoint a process resumed
# from (absent, or null in `resumed_from`, for the process that started the run).
PROCESS_KEYS = ("git_commit", "git_dirty", "lock_file_sha256", "packages", "python", "platform",
                "cpu", "cpu_capability", "torch_threads", "subnormals_flushed", "device",
                "start_time", "resumed_at_step")  # fmt: skip


def with_history(prov: dict[str, Any], previous: Path) -> dict[str, Any]:
    """`prov` for a process resuming a run whose last provenance is `previous`: adds
    `resumed_from`, the earlier processes oldest first (each one's PROCESS_KEYS)."""
    try:
        old = json.loads(previous.read_text())
    except (OSError, ValueError):
        old = None
    if not isinstance(old, dict):
        earlier = [{"provenance": "missing or unreadable at resume"}]
    else:
        earlier = [*old.get("resumed_from", []), {k: old.get(k) for k in PROCESS_KEYS}]
    return {**prov, "resumed_from": earlier}


def processes(prov: dict[str, Any]) -> list[dict[str, Any]]:
    """Every process that trained the run, oldest first (one unless it was resumed)."""
    return [*prov.get("resumed_from", []), prov]


def distinct(prov: dict[str, Any], key: str) -> list[str]:
    """The distinct known values of one of PROCESS_KEYS over the processes that trained the
    run, oldest first: e.g. its commits, or its CPU models (a seed's numbers depend on both)."""
    known = (p.get(key) for p in processes(prov))
    return list(dict.fromkeys(str(v) for v in known if v))


def joined(prov: dict[str, Any] | None, key: str, width: int | None = None) -> str:
    """`distinct(prov, key)` as one table cell, each value cut to `width` characters:
    "a + b" for a run resumed on another commit or CPU, "" without provenance."""
    return " + ".join(v[:width] for v in distinct(prov, key)) if prov else ""


def commits(prov: dict[str, Any]) -> list[str]:
    """The distinct known commits whose code trained the run, oldest first."""
    return distinct(prov, "git_commit")


def dirty(prov: dict[str, Any]) -> bool | None:
    """True if any process that trained the run had uncommitted changes; None if none had
    but some process's state is unknown (no git); else False."""
    flags = [p.get("git_dirty") for p in processes(prov)]
    return True if any(flags) else None if None in flags else False


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
