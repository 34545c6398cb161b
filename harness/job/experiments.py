"""Expand a profile's experiments into training jobs: the one list that the Snakefile
(what to run), the aggregation (what is missing) and the regression check share.

`config/experiments.yaml` names the variants (algorithm + `--set` overrides) and which
variants each experiment compares; the profile (`experiments:` in config/<profile>.yaml)
picks the experiments it runs with their environments and seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError, read_mapping
from harness.job.config import CONFIG_DIR, load_profile


@dataclass(frozen=True)
class Job:
    """One training run of the pipeline."""

    variant: str
    algo: str
    env: str
    seed: int
    overrides: tuple[tuple[str, Any], ...]  # (dotted key, value), as `--set key=value`

    def run_dir(self, runs_root: Path | str, profile: str) -> Path:
        return Path(runs_root) / profile / self.variant / self.env / f"seed{self.seed}"

    def set_args(self) -> list[str]:
        """The `--set` arguments, values in YAML flow style (what `parse_set` reads)."""
        out = []
        for key, value in self.overrides:
            text = yaml.safe_dump(value, default_flow_style=True).strip()
            out += ["--set", f"{key}={text.removesuffix('...').strip()}"]
        return out


def load_experiments() -> dict[str, Any]:
    return read_mapping(CONFIG_DIR / "experiments.yaml")


def _seeds(value: Any, where: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return list(range(value))
    if isinstance(value, list) and value and all(isinstance(s, int) and s >= 0 for s in value):
        return value
    raise ConfigError(f"{where}.seeds must be a count >= 1 or a list of seeds >= 0")


GATE = "regress"  # the regression gate's experiment: trained by `make regress`, not `all`


def experiment_jobs(profile: str | dict[str, Any], gate: bool = False) -> dict[str, list[Job]]:
    """{experiment: its jobs} for the profile (a name, or the loaded profile as the
    Snakefile has it), in the profile's order. The gate's `regress` experiment only with
    `gate=True`: it is not part of the reproduction (nor of its report)."""
    if isinstance(profile, str):
        profile = load_profile(profile)
    profile_name = profile["profile"]
    catalogue = load_experiments()
    variants, experiments = catalogue["variants"], catalogue["experiments"]
    out: dict[str, list[Job]] = {}
    for name, spec in (profile.get("experiments") or {}).items():
        if name == GATE and not gate:
            continue
        where = f"{profile_name}.yaml:experiments.{name}"
        if name not in experiments:
            raise ConfigError(f"{where}: unknown experiment; known: {', '.join(experiments)}")
        chosen = spec.get("variants", experiments[name]["variants"])
        jobs = []
        for variant in chosen:
            if variant not in variants:
                raise ConfigError(f"{where}: unknown variant {variant!r}")
            v = variants[variant]
            sets = tuple((v.get("set") or {}).items())
            for env in spec["envs"]:
                for seed in _seeds(spec["seeds"], where):
                    jobs.append(Job(variant, v["algo"], env, seed, sets))
        out[name] = jobs
    return out


def all_jobs(profile: str | dict[str, Any]) -> list[Job]:
    """Every distinct job of the profile (a run shared by experiments appears once)."""
    seen: dict[tuple[str, str, int], Job] = {}
    for jobs in experiment_jobs(profile).values():
        for job in jobs:
            seen.setdefault((job.variant, job.env, job.seed), job)
    return list(seen.values())
