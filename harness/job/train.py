"""One training job, start to finish (docs/pipeline.md "The run directory"): resolve and validate
the configuration, write `config.json` and `provenance.json`, run the algorithm (resuming
from `checkpoint.pt` when there is one), write `done.json`.

Everything that can be wrong with the request is checked before the first file is written
and raised as a `ConfigError` naming the value.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from algorithms.parts.envs import EnvSpec, resolve_env
from algorithms.parts.loop import DivergedError
from algorithms.parts.seeding import seed_everything
from algorithms.registry import ALGORITHMS, Algorithm
from harness.errors import ConfigError
from harness.job import provenance
from harness.job.checkpoint import CHECKPOINT, EXIT_INTERRUPTED, FileCheckpoint, Interrupted
from harness.job.config import load_profile, resolve
from harness.job.process import tune_for_training
from harness.job.rundir import RUN_CSVS, RUN_FILES, RunRecorder, atomic_write_json

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class TrainRequest:
    """What `mbrl-bench train` was asked to do (its command-line arguments)."""

    algo: str
    env: str
    seed: int
    out: Path
    profile: str = "paper"
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # dotted key -> value
    device: str = "cpu"
    threads: int | None = None  # None: $OMP_NUM_THREADS, else torch's choice
    variant: str | None = None  # None: the algorithm's name
    checkpoint_every: int | None = None  # None: the profile's checkpoint_every; 0: never
    profile_data: dict[str, Any] | None = None  # the profile as loaded (workflow), not by name


def resolve_run(
    algo_name: str,
    env_name: str,
    profile_name: str | dict[str, Any],
    overrides: dict[str, Any],
) -> tuple[Algorithm, EnvSpec, dict[str, Any], Any]:
    """(algorithm, environment, profile, frozen config) of one run, validated. The profile
    is a name (config/<name>.yaml) or the profile's contents as the workflow loaded them."""
    if algo_name not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {algo_name!r}; choose one of {', '.join(ALGORITHMS)}")
    algo = ALGORITHMS[algo_name]
    profile = load_profile(profile_name) if isinstance(profile_name, str) else profile_name
    spec = env_spec(env_name)
    if spec.discrete and algo.family in ("sac", "mbpo"):
        raise ConfigError(f"{algo_name} needs continuous actions; {env_name} is discrete")
    if not spec.discrete and algo.family == "dqn":
        raise ConfigError(f"{algo_name} needs discrete actions; {env_name} is continuous")
    cfg = resolve(algo, spec, profile, overrides)
    if algo.validate is not None:
        try:
            algo.validate(cfg, spec)
        except ValueError as exc:
            raise ConfigError(f"invalid config: {exc}") from exc
    return algo, spec, profile, cfg


def env_spec(name: str) -> EnvSpec:
    """`resolve_env`, with every way an environment cannot be made as one ConfigError line
    (unknown id, a module of `module:EnvId` that does not import, a missing extra such as
    Box2D or shimmy: gymnasium raises DependencyNotInstalled, or others for third-party ids)."""
    try:
        return resolve_env(name)
    except ConfigError:
        raise
    except Exception as exc:  # gymnasium and third-party env constructors: no common base
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, ValueError) and first.startswith(("unknown environment", repr(name))):
            raise ConfigError(first) from exc
        raise ConfigError(
            f"cannot make environment {name!r}: {type(exc).__name__}: {first}"
        ) from exc


def train(req: TrainRequest) -> int:
    """Run (or resume, or skip when finished) one job; 0 when done.json is written or was
    already there, EXIT_INTERRUPTED when a SIGTERM stopped it after a checkpoint."""
    _check_request(req)
    omp = os.environ.get("OMP_NUM_THREADS", "")  # Snakemake sets it to the rule's threads
    tune_for_training(req.threads or (int(omp) if omp.isdigit() and int(omp) > 0 else None))
    algo, spec, profile, cfg = resolve_run(
        req.algo, req.env, req.profile_data or req.profile, req.overrides
    )
    device = _device(req.device)
    out = req.out
    _check_writable(out)
    label = f"{profile['profile']} {algo.name} {spec.name} seed{req.seed}"
    config = run_config(req, algo, spec, profile, cfg, device)
    if _check_owned(out, config):
        print(f"mbrl-bench: {out} is finished (done.json present); nothing to do", file=sys.stderr)
        return 0
    every = req.checkpoint_every
    every = int(profile.get("checkpoint_every", 0)) if every is None else every
    rec = RunRecorder(out, label)
    ckpt = FileCheckpoint(out, every, rec, config, device)
    ckpt.preload()  # a bad checkpoint is refused before anything is written
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out} cannot be created: {exc.strerror}") from exc
    with _lock(out):
        if _check_owned(out, config):  # finished by another process meanwhile
            print(f"mbrl-bench: {out} is finished (done.json present); nothing to do",
                  file=sys.stderr)  # fmt: skip
            return 0
        return _train_locked(req, algo, spec, profile, cfg, config, device, rec, ckpt)


def _train_locked(req, algo, spec, profile, cfg, config, device, rec, ckpt) -> int:
    out, label = req.out, rec.label

    atomic_write_json(out / "config.json", config)
    resuming = ckpt.path.exists()
    prov = provenance.collect(device, config)
    if resuming:  # keep the earlier processes' code versions, and say where this one starts
        prov = provenance.with_history(prov, out / "provenance.json")
        prov["resumed_at_step"] = ckpt.preloaded_step
    atomic_write_json(out / "provenance.json", prov)

    if not resuming:  # a fresh start: drop rows of an earlier, killed attempt
        for stale in RUN_CSVS:
            (out / stale).unlink(missing_ok=True)
        rec.log(f"profile: {profile['label']}")
    gens = seed_everything(req.seed, device)
    status = "ok"
    previous = signal.signal(signal.SIGTERM, ckpt.request_stop)
    try:
        summary = algo.train(cfg, spec, gens, device, rec, ckpt)
    except DivergedError as exc:
        status, summary = f"failed: {exc}", {"final_return": float("nan"), "auc": float("nan")}
        rec.log(f"run failed: {exc}")
    except Interrupted as exc:
        print(f"mbrl-bench: [{label}] {exc}; exit code {EXIT_INTERRUPTED}: rerun the same "
              f"command to resume -> {out}", file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    done = {
        "status": status,
        **summary,
        "algo": algo.name,
        "variant": config["variant"],
        "env": spec.name,
        "seed": req.seed,
        "profile": profile["profile"],
        "env_steps": cfg.total_steps,
        "wall_s": rec.elapsed(),
        "notes": rec.notes,
    }
    atomic_write_json(out / "provenance.json", {**prov, "end_time": provenance.now()})
    atomic_write_json(out / "done.json", done)
    ckpt.remove()
    print(f"[{label}] {status}: final return {summary['final_return']:.1f} -> {out}",
          file=sys.stderr)  # fmt: skip
    return 0


def run_config(
    req: TrainRequest,
    algo: Algorithm,
    spec: EnvSpec,
    profile: dict[str, Any],
    cfg: Any,
    device: torch.device,
) -> dict[str, Any]:
    """The contents of config.json."""
    termination = "known" if spec.termination is not None else "none: the model never terminates"
    return {
        "algo": algo.name,
        "variant": req.variant or algo.name,
        "env": spec.name,
        "gym_id": spec.gym_id,
        "env_kwargs": dict(spec.kwargs),
        "termination": termination,
        "seed": req.seed,
        "profile": profile["profile"],
        "profile_label": profile["label"],
        "device": str(device),
        "hyperparameters": dataclasses.asdict(cfg),
    }


def _check_request(req: TrainRequest) -> None:
    if req.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {req.seed}")
    if req.threads is not None and req.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {req.threads}")
    if req.checkpoint_every is not None and req.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every must be >= 0, got {req.checkpoint_every}")
    if req.variant is not None and not _LABEL.fullmatch(req.variant):
        raise ConfigError(f"--variant {req.variant!r} must match {_LABEL.pattern}")


def _device(name: str) -> torch.device:
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {name!r}; choose cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but CUDA is not available")
    return torch.device(name)


def _check_writable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out} is not writable ({probe} does not accept new files)")


def _check_owned(out: Path, config: dict) -> bool:
    """Whether `out` is this configuration's finished run (True), or empty, absent or its
    unfinished run (False); anything else - files `train` does not write, another
    configuration's run, finished or not - is refused: nothing is deleted or overwritten."""
    if not out.is_dir():
        return False
    present = {p.name for p in out.iterdir()}
    foreign = sorted(n for n in present if n not in RUN_FILES and not _TMP.fullmatch(n))
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ConfigError(
            f"--out {out} holds files mbrl-bench train did not write ({shown}); "
            "use an empty or new directory"
        )
    if not present - {".lock"} or all(_TMP.fullmatch(n) or n == ".lock" for n in present):
        return False
    try:
        previous = json.loads((out / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"--out {out} holds run files but no readable config.json; use another --out"
        ) from exc
    finished = (out / "done.json").exists()
    if previous != json.loads(json.dumps(config)):
        changed = sorted(k for k in {*previous, *config} if previous.get(k) != config.get(k))
        what = "a finished run" if finished else "a run"
        hint = (
            "delete its checkpoint.pt to start over, or use another --out"
            if (out / CHECKPOINT).exists() else "use another --out"
        )  # fmt: skip
        kind = "holds a checkpoint of" if (out / CHECKPOINT).exists() else f"is {what} of"
        raise ConfigError(f"{out} {kind} a different configuration ({', '.join(changed)} "
                          f"differ); {hint}")  # fmt: skip
    return finished


_TMP = re.compile(r"\..+\.tmp")  # an atomic write's temporary file (rundir.atomic_write)


@contextlib.contextmanager
def _lock(out: Path):
    """An exclusive lock on the run directory (`.lock`, flock): a second `train` on the
    same --out stops at once, before writing anything."""
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ConfigError(f"--out {out} is in use by another mbrl-bench train") from exc
        yield
        if (out / "done.json").exists():  # finished: later calls find done.json first
            (out / ".lock").unlink(missing_ok=True)
    finally:
        os.close(fd)
