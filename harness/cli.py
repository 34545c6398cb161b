"""`mbrl-bench`: the command line of the harness (shared/DESIGN.md "The CLI").

Bad input - unknown algorithm, environment or profile, a malformed or unknown `--set`,
a wrongly typed value, an invalid hyperparameter, a negative seed, an unwritable `--out` -
is one line on stderr and exit code 2, detected before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from pathlib import Path
from typing import NoReturn

import torch

from algorithms.envs import ENV_NAMES, resolve_env
from algorithms.loop import DivergedError
from algorithms.registry import ALGORITHMS
from algorithms.seeding import seed_everything
from harness import baseline, check, provenance
from harness.checkpoint import CHECKPOINT, FileCheckpoint
from harness.config import PROFILES, ConfigError, load_profile, parse_set, resolve
from harness.rundir import RunRecorder, atomic_write_json

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage)
        self.exit(2, f"mbrl-bench: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mbrl-bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train one run and write its run directory")
    train.add_argument("--algo", required=True, help=f"one of: {', '.join(ALGORITHMS)}")
    train.add_argument("--env", required=True, help="short name or registered gymnasium id")
    train.add_argument("--seed", required=True, type=int)
    train.add_argument("--profile", default="paper", help=f"one of: {', '.join(PROFILES)}")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a hyperparameter (dotted key)",
    )
    train.add_argument("--device", default="cpu", help="cpu or cuda")
    train.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: $OMP_NUM_THREADS, else torch's)",
    )
    train.add_argument(
        "--variant",
        default=None,
        help="name of this configuration (config/experiments.yaml), e.g. pmac_alpha0.5 "
        "(default: the algorithm)",
    )
    train.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="STEPS",
        help="checkpoint at the first episode end after every STEPS env steps "
        "(default: the profile's checkpoint_every; 0: never)",
    )
    train.add_argument("--out", required=True, type=Path, help="run directory")

    lst = sub.add_parser("list", help="algorithms, environments and profiles")
    lst.add_argument(
        "--config",
        nargs=2,
        metavar=("ALGO", "ENV"),
        help="print the resolved hyperparameters of ALGO on ENV",
    )
    lst.add_argument("--profile", default="paper")
    _add_report_commands(sub)
    _add_gate_parsers(sub)
    return parser  # fmt: skip


def _add_report_commands(sub) -> None:
    """aggregate -> figures -> report: statistics and reports from stored runs only."""
    for name, help_ in (
        ("aggregate", "runs -> tidy tables and rliable statistics (results/aggregate/P/)"),
        ("figures", "runs + aggregate -> paper figures, PNG and PDF (reports/P/figures/)"),
        ("report", "runs + aggregate + figures -> self-contained HTML (reports/P/index.html)"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--profile", required=True, help=f"one of: {', '.join(PROFILES)}")
        p.add_argument("--runs", type=Path, default=Path("results/runs"), help="runs root")
        if name == "aggregate":
            p.add_argument("--out", type=Path, default=Path("results/aggregate"))
            p.add_argument(
                "--reps",
                type=int,
                default=None,
                help="bootstrap replicates (default: profile's stats.bootstrap_reps)",
            )
        else:
            p.add_argument("--aggregate", type=Path, default=Path("results/aggregate"))
            p.add_argument("--out", type=Path, default=Path("reports"))
        if name == "report":
            p.add_argument(
                "--benchmarks",
                type=Path,
                default=Path("results/benchmarks"),
                help="Snakemake benchmark tsv root (compute-cost table)",
            )


def _add_gate_parsers(sub) -> None:
    """`baseline save` and `check`: the regression gate (harness.baseline, harness.check)."""
    base = sub.add_parser("baseline", help="store summaries of runs as a baseline")
    base_sub = base.add_subparsers(
        dest="baseline_command", metavar="save", required=True, parser_class=_Parser
    )
    save = base_sub.add_parser("save", help="write a baseline directory from finished runs")
    save.add_argument("--runs", required=True, type=Path, help="runs root of one profile")
    save.add_argument(
        "--out",
        required=True,
        type=Path,
        help="baseline directory, replaced as a whole; {profile} is substituted "
        "(e.g. results/baselines/{profile}/)",
    )
    chk = sub.add_parser(
        "check", help="compare candidate runs with a baseline (exit 1: regression)"
    )
    chk.add_argument("--baseline", required=True, type=Path, help="a `baseline save` directory")
    chk.add_argument("--candidate", required=True, type=Path, help="runs root of the candidate")
    how = chk.add_mutually_exclusive_group()
    how.add_argument(
        "--exact",
        action="store_true",
        help="byte-identical CSVs per seed (refactors: same seeds, CPU, libraries)",
    )
    how.add_argument(
        "--auto",
        action="store_true",
        help="--exact when baseline and candidate runs share CPU model, Python, "
        "torch threads and library versions, else the statistical check",
    )
    chk.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="false-alarm probability of the whole check (default 0.05)",
    )
    chk.add_argument(
        "--tolerance",
        type=float,
        default=0.5,
        help="relative drop the check must be able to detect, else the verdict "
        "is underpowered (default 0.5: half the baseline IQM)",
    )
    chk.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="CAND=BASE",
        help="compare candidate variant CAND with baseline variant BASE",
    )
    chk.add_argument("--markdown", type=Path, help="write the Markdown report here")
    chk.add_argument("--junit", type=Path, help="write JUnit XML here")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return train(args)
        if args.command in ("aggregate", "figures", "report"):
            return report_command(args)
        if args.command == "baseline":
            return baseline_save(args)
        if args.command == "check":
            return check.check_command(args)
        return list_command(args)
    except ConfigError as exc:
        print(f"mbrl-bench: error: {exc}", file=sys.stderr)
        return 2


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


def _resolve_run(algo_name: str, env_name: str, profile_name: str, overrides: dict):
    if algo_name not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {algo_name!r}; choose one of {', '.join(ALGORITHMS)}")
    algo = ALGORITHMS[algo_name]
    profile = load_profile(profile_name)
    try:
        spec = resolve_env(env_name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
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


def _check_resumable(out: Path, config: dict) -> None:
    """A checkpoint may only be resumed by the configuration that wrote it."""
    if not (out / CHECKPOINT).exists():
        return
    try:
        previous = json.loads((out / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{out} holds a checkpoint but no readable config.json") from exc
    if previous != json.loads(json.dumps(config)):
        changed = sorted(k for k in {*previous, *config} if previous.get(k) != config.get(k))
        raise ConfigError(
            f"{out} holds a checkpoint of a different configuration ({', '.join(changed)} "
            "differ); delete its checkpoint.pt to start over, or use another --out"
        )


def train(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    if args.variant is not None and not _LABEL.fullmatch(args.variant):
        raise ConfigError(f"--variant {args.variant!r} must match {_LABEL.pattern}")
    algo, spec, profile, cfg = _resolve_run(
        args.algo, args.env, args.profile, parse_set(args.overrides)
    )
    device = _device(args.device)
    out: Path = args.out
    _check_writable(out)
    if (out / "done.json").exists():
        print(f"mbrl-bench: {out} is finished (done.json present); nothing to do", file=sys.stderr)
        return 0

    omp = os.environ.get("OMP_NUM_THREADS", "")  # Snakemake sets it to the rule's threads
    threads = args.threads or (int(omp) if omp.isdigit() and int(omp) > 0 else None)
    if threads:
        torch.set_num_threads(threads)
    label = f"{profile['profile']} {algo.name} {spec.name} seed{args.seed}"
    termination = "known" if spec.termination is not None else "none: the model never terminates"
    config = {
        "algo": algo.name,
        "variant": args.variant or algo.name,
        "env": spec.name,
        "gym_id": spec.gym_id,
        "env_kwargs": dict(spec.kwargs),
        "termination": termination,
        "seed": args.seed,
        "profile": profile["profile"],
        "profile_label": profile["label"],
        "device": str(device),
        "hyperparameters": dataclasses.asdict(cfg),
    }
    _check_resumable(out, config)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", config)
    prov = provenance.collect(device, config)
    atomic_write_json(out / "provenance.json", prov)

    every = args.checkpoint_every
    every = int(profile.get("checkpoint_every", 0)) if every is None else every
    rec = RunRecorder(out, label)
    ckpt = FileCheckpoint(out, every, rec, config, device)
    if not ckpt.path.exists():  # a fresh start: drop rows of an earlier, killed attempt
        for stale in out.glob("*.csv"):
            stale.unlink()
        rec.log(f"profile: {profile['label']}")
    gens = seed_everything(args.seed, device)
    status = "ok"
    try:
        summary = algo.train(cfg, spec, gens, device, rec, ckpt)
    except DivergedError as exc:
        status, summary = f"failed: {exc}", {"final_return": float("nan"), "auc": float("nan")}
        rec.log(f"run failed: {exc}")
    done = {
        "status": status,
        **summary,
        "algo": algo.name,
        "variant": config["variant"],
        "env": spec.name,
        "seed": args.seed,
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


def baseline_save(args: argparse.Namespace) -> int:
    out, n = baseline.save(args.runs, args.out, sys.argv)
    print(f"mbrl-bench: baseline of {n} runs written to {out}", file=sys.stderr)
    return 0


def list_command(args: argparse.Namespace) -> int:
    if args.config:
        _, _, _, cfg = _resolve_run(args.config[0], args.config[1], args.profile, {})
        print(json.dumps(dataclasses.asdict(cfg), indent=2))
        return 0
    print("algorithms:")
    for a in ALGORITHMS.values():
        print(f"  {a.name:<18} {a.description}")
    print("environments (or any registered gymnasium id):")
    for name in ENV_NAMES:
        s = resolve_env(name)
        kind = "discrete" if s.discrete else "continuous"
        term = "termination fn" if s.termination is not None else "never terminates"
        dims = f"obs {s.obs_dim:>3}, act {s.act_dim:>2} ({kind})"
        print(f"  {name:<18} {s.gym_id:<20} {dims}, {term}")
    print("profiles:")
    for p in PROFILES:
        print(f"  {p:<18} {load_profile(p)['label']}")
    print("hyperparameters: mbrl-bench list --config ALGO ENV [--profile P]")
    return 0


def report_command(args: argparse.Namespace) -> int:
    """aggregate / figures / report (imported here: they load pandas, rliable, matplotlib)."""
    load_profile(args.profile)  # unknown profile: one line, exit 2, nothing written
    if not args.runs.is_dir():
        raise ConfigError(f"--runs {args.runs} does not exist or is not a directory")
    if args.command == "aggregate":
        from harness.aggregate import aggregate

        if args.reps is not None and args.reps < 1:
            raise ConfigError(f"--reps must be >= 1, got {args.reps}")
        out = aggregate(args.profile, args.runs, args.out, args.reps)
    elif args.command == "figures":
        from harness.figures import figures

        out = figures(args.profile, args.runs, args.aggregate, args.out)
    else:
        from harness.report import report

        out = report(args.profile, args.runs, args.aggregate, args.benchmarks, args.out)
    print(f"mbrl-bench {args.command}: {args.profile} -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
