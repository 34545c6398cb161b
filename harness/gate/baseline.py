"""Stored baselines for the regression check (docs/regression.md).

`mbrl-bench baseline save --runs DIR --out results/baselines/{profile}/` reads finished runs
through `harness.analysis.runs` and writes a directory small enough to commit:

    provenance.json         what produced the runs: code commits, CPU model, library versions
    {variant}/{env}.json    per run: seed, status, final return, AUC, the evaluation curve,
                            the one-step model errors (model-based runs) and the SHA-256 of
                            every CSV with its wall-clock columns removed (`check --exact`)

The directory is replaced as a whole, so a baseline never mixes two saves.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.analysis.runs import DAMAGED, INCOMPLETE, Run, discover
from harness.errors import ConfigError, read_mapping
from harness.job import provenance
from harness.job.rundir import WALL_CLOCK_SUFFIX, atomic_write_json

KIND = "mbrl-bench baseline"
FORMAT = 1
METRICS = ("final_return", "auc")  # done.json fields the statistical check compares
# What floating point depends on; torch's CPU capability picks its vectorised kernels, which
# round some operations differently (AVX2 against AVX512 on one CPU model: docs/results.md).
MACHINE_KEYS = ("cpu", "cpu_capability", "python", "torch_threads", "packages")


def canonical_csv(path: Path) -> bytes:
    """The bytes `--exact` compares: the file as written, minus columns ending in `wall_s`
    (wall-clock times differ between identical runs)."""
    raw = path.read_bytes()
    rows = list(csv.reader(io.StringIO(raw.decode(), newline="")))
    if not rows or not any(c.endswith(WALL_CLOCK_SUFFIX) for c in rows[0]):
        return raw
    keep = [i for i, c in enumerate(rows[0]) if not c.endswith(WALL_CLOCK_SUFFIX)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow([row[i] for i in keep if i < len(row)])
    return buf.getvalue().encode()


def file_hashes(run: Run) -> dict[str, str]:
    """{csv file name: SHA-256 of its canonical bytes} for every CSV of the run."""
    try:
        return {p.name: hashlib.sha256(canonical_csv(p)).hexdigest() for p in run.csv_files()}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read the CSV files of {run.path}: {exc}") from exc


def machine(prov: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of a run's provenance that floating-point results depend on; None when any of
    it is not recorded (absent, or null as in a `resumed_from` entry written before it was)."""
    if not prov or any(prov.get(k) is None for k in MACHINE_KEYS):
        return None
    return {k: prov[k] for k in MACHINE_KEYS}


def machines(prov: dict[str, Any] | None) -> list[dict[str, Any] | None]:
    """`machine` of every process that trained the run (a resumed run may have moved)."""
    return [machine(p) for p in provenance.processes(prov or {})]


def _number(value: Any) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def run_record(run: Run) -> dict[str, Any]:
    """What the baseline keeps of one finished run."""
    done, prov = run.done or {}, run.provenance or {}
    curve = run.eval_curve()
    record: dict[str, Any] = {
        "seed": run.seed,
        "status": run.status,
        **{m: _number(done.get(m)) for m in METRICS},
        "env_steps": done.get("env_steps"),
        "curve": {"step": curve["step"].tolist(), "return": curve["return"].tolist()},
        "sha256": file_hashes(run),
        "config_sha256": prov.get("config_sha256"),
        "git_commit": prov.get("git_commit"),
    }
    model = run.model_errors("state")  # model.csv's state-prediction rows (today's meaning)
    if model is not None and not model.empty:
        record["model_error"] = {
            split: {"step": g["step"].tolist(), "error": g["error"].tolist()}
            for split, g in model.groupby("split", sort=True)
        }
    return record


def distinct(items: list[Any]) -> list[Any]:
    """The items without repeats, in first-seen order (works for unhashable items)."""
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _validate(runs: list[Run], root: Path) -> str:
    """The runs' common profile; every run must be finished and appear once."""
    if not runs:
        raise ConfigError(f"no run directories (seed<N>) under {root}")
    unfinished = [r for r in runs if r.status == INCOMPLETE]
    if unfinished:
        raise ConfigError(
            f"{len(unfinished)} run(s) under {root} are incomplete (no done.json), e.g. "
            f"{unfinished[0].path}; a baseline needs finished runs"
        )
    damaged = [r for r in runs if r.status.startswith(DAMAGED)]
    if damaged:
        raise ConfigError(
            f"{len(damaged)} run(s) under {root} are damaged, e.g. {damaged[0].path}: "
            f"{damaged[0].status.split(': ', 1)[1]}; a baseline needs intact runs"
        )
    profiles = sorted({r.profile for r in runs})
    if len(profiles) > 1:
        raise ConfigError(f"runs under {root} mix profiles {profiles}; save one profile's runs")
    seen: dict[tuple[str, str, int], Path] = {}
    for r in runs:
        if r.key() in seen:
            raise ConfigError(f"run {r.key()} appears twice: {seen[r.key()]} and {r.path}")
        seen[r.key()] = r.path
    return profiles[0]


def _replaceable(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    marker = out / "provenance.json"
    if any(out.iterdir()) and not (marker.exists() and read_mapping(marker).get("kind") == KIND):
        raise ConfigError(f"--out {out} is a non-empty directory that is not a baseline")


def save(runs_root: Path, out: Path, command: list[str]) -> tuple[Path, int]:
    """Write the baseline of the runs under `runs_root` to `out` ("{profile}" in it is
    replaced by the runs' profile); returns (directory, number of runs)."""
    runs = discover(runs_root)
    profile = _validate(runs, runs_root)
    out = Path(str(out).replace("{profile}", profile))
    _replaceable(out)
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.variant, r.env), []).append(r)
    files = {
        (variant, env): {
            "variant": variant,
            "env": env,
            "algo": rs[0].algo,
            "profile": profile,
            "runs": [run_record(r) for r in sorted(rs, key=lambda r: r.seed)],
        }
        for (variant, env), rs in sorted(groups.items())
    }
    provs = [r.provenance or {} for r in runs]
    meta = {
        "kind": KIND,
        "format": FORMAT,
        "profile": profile,
        "runs": len(runs),
        "source": str(runs_root),
        "saved": provenance.now(),
        "saved_by": {**provenance.git_state(), "command": command},
        "run_git_commits": sorted({c for p in provs for c in provenance.commits(p)}),
        "run_git_dirty": any(bool(provenance.dirty(p)) for p in provs),
        "machines": distinct([m for p in provs for m in machines(p)]),
    }
    _write_replacing(out, meta, files)
    return out, len(runs)


def _write_replacing(out: Path, meta: dict, files: dict[tuple[str, str], dict]) -> None:
    """Write into a fresh sibling directory, then swap it in for `out`."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise ConfigError(f"--out {out} is not writable: {exc.strerror}") from exc
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; a baseline is meant to be shared
        for (variant, env), data in files.items():
            atomic_write_json(tmp / variant / f"{env}.json", data)
        atomic_write_json(tmp / "provenance.json", meta)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old.{os.getpid()}")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass(frozen=True)
class Baseline:
    """A stored baseline: its provenance and {(variant, env): [run record]}."""

    path: Path
    meta: dict[str, Any]
    groups: dict[tuple[str, str], list[dict[str, Any]]]

    @property
    def profile(self) -> str:
        return self.meta["profile"]


_RUN_FIELDS = ("seed", "status", *METRICS, "sha256")


def load(path: Path) -> Baseline:
    """Read a baseline directory written by `save`; anything malformed is a ConfigError."""
    marker = path / "provenance.json"
    if not marker.is_file():
        raise ConfigError(f"baseline {path} has no provenance.json (not a saved baseline)")
    meta = read_mapping(marker)
    if meta.get("kind") != KIND or meta.get("format") != FORMAT:
        raise ConfigError(f"{marker} is not a format-{FORMAT} {KIND}")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in sorted(path.glob("*/*.json")):
        data = read_mapping(f)
        runs = data.get("runs")
        if not isinstance(runs, list) or not all(
            isinstance(r, dict) and all(k in r for k in _RUN_FIELDS) for r in runs
        ):
            raise ConfigError(f"{f}: `runs` must be a list of records with {list(_RUN_FIELDS)}")
        groups[(str(data.get("variant")), str(data.get("env")))] = runs
    if not groups:
        raise ConfigError(f"baseline {path} holds no run summaries")
    return Baseline(path, meta, groups)
