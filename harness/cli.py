"""`mbrl-bench`: the command line of the harness. Each subcommand parses its arguments and
hands them to the part that does the work: `harness.job.train` (train), `harness.analysis`
(aggregate, figures, report), `harness.gate` (baseline save, check).

Bad input - unknown algorithm, environment or profile, a malformed or unknown `--set`,
a wrongly typed value, an invalid hyperparameter, a negative seed, an unwritable `--out` -
is one line on stderr and exit code 2, detected before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import NoReturn

from algorithms.parts.envs import ENV_NAMES, resolve_env
from algorithms.registry import ALGORITHMS
from harness.errors import ConfigError, read_mapping
from harness.job.config import PROFILES, load_profile, parse_profile_json, parse_set
from harness.job.rundir import atomic_write_text
from harness.job.train import TrainRequest, resolve_run, train


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage)
        self.exit(2, f"mbrl-bench: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mbrl-bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train one run and write its run directory")
    train.add_argument("--algo", required=True, help=f"one of: {', '.join(ALGORITHMS)}")
    train.add_argument(
        "--env",
        required=True,
        help="short name, registered gymnasium id, or module:EnvId (imports module, which "
        "registers EnvId; gymnasium's convention)",
    )
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
    train.add_argument(
        "--profile-json",
        default=None,
        metavar="JSON",
        help="the profile's contents (profile, label, checkpoint_every, train) instead of "
        "reading config/<profile>.yaml: how the workflow passes the config it loaded",
    )
    train.add_argument(
        "--out",
        required=True,
        type=Path,
        help="run directory: empty, new, or this configuration's own run (resumed, or "
        "nothing to do when finished)",
    )

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
            p.add_argument(
                "--envs",
                type=lambda v: [e for e in v.split(",") if e],
                default=None,
                help="only these environments (comma-separated) of the profile's experiments, "
                "e.g. a stored set that covers one environment",
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
    """`baseline save` and `check`: the regression gate (harness.gate)."""
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
        help="--exact when baseline and candidate runs share CPU model, torch CPU capability, "
        "Python, torch threads and library versions, else the statistical check",
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
            return train_command(args)
        if args.command in ("aggregate", "figures", "report"):
            return report_command(args)
        if args.command == "baseline":
            return baseline_save(args)
        if args.command == "check":
            return check_command(args)
        return list_command(args)
    except ConfigError as exc:
        print(f"mbrl-bench: error: {exc}", file=sys.stderr)
        return 2


def train_command(args: argparse.Namespace) -> int:
    overrides = parse_set(args.overrides)
    data = None
    if args.profile_json is not None:
        data = parse_profile_json(args.profile_json)
        if args.profile not in (data["profile"], "paper"):  # "paper": --profile's default
            raise ConfigError(
                f"--profile {args.profile} differs from --profile-json's {data['profile']!r}"
            )
        args.profile = data["profile"]
    return train(
        TrainRequest(
            algo=args.algo,
            env=args.env,
            seed=args.seed,
            out=args.out,
            profile=args.profile,
            overrides=overrides,
            device=args.device,
            threads=args.threads,
            variant=args.variant,
            checkpoint_every=args.checkpoint_every,
            profile_data=data,
        )
    )


def baseline_save(args: argparse.Namespace) -> int:
    from harness.gate import baseline

    out, n = baseline.save(args.runs, args.out, sys.argv)
    print(f"mbrl-bench: baseline of {n} runs written to {out}", file=sys.stderr)
    return 0


def list_command(args: argparse.Namespace) -> int:
    if args.config:
        _, _, _, cfg = resolve_run(args.config[0], args.config[1], args.profile, {})
        print(json.dumps(dataclasses.asdict(cfg), indent=2))
        return 0
    print("algorithms:")
    for a in ALGORITHMS.values():
        print(f"  {a.name:<18} {a.description}")
    print("environments (or any registered gymnasium id, or module:EnvId for your own:")
    print("  `--env mypackage.envs:MyEnv-v0` imports mypackage.envs, which calls")
    print("  gymnasium.register('MyEnv-v0', ...) with max_episode_steps; a flat Box observation")
    print("  and a Box (or Discrete, for dqn/dyna_q) action space; the model never terminates):")
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
    check_out_dir(args.out / args.profile, create=False)
    if args.command != "aggregate":  # read before anything is drawn or written
        summary = args.aggregate / args.profile / "summary.json"
        if not summary.exists():
            raise ConfigError(f"{summary} missing: run `mbrl-bench aggregate` first")
        read_mapping(summary)
    check_out_dir(args.out / args.profile)
    if args.command == "aggregate":
        from harness.analysis.aggregate import aggregate

        if args.reps is not None and args.reps < 1:
            raise ConfigError(f"--reps must be >= 1, got {args.reps}")
        out = aggregate(args.profile, args.runs, args.out, args.reps, args.envs)
    elif args.command == "figures":
        from harness.analysis.figures import figures

        out = figures(args.profile, args.runs, args.aggregate, args.out)
    else:
        from harness.analysis.report import report

        out = report(args.profile, args.runs, args.aggregate, args.benchmarks, args.out)
    print(f"mbrl-bench {args.command}: {args.profile} -> {out}", file=sys.stderr)
    return 0


def check_out_dir(out: Path, create: bool = True) -> None:
    """An output directory that is a directory or can be created (checked by creating it,
    unless `create` is False)."""
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"--out: {probe} exists and is not a directory")
    if not create:
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out: cannot create {out}: {exc.strerror}") from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"--out: {out} is not writable")


def check_command(args: argparse.Namespace) -> int:
    """Print the Markdown report, write the requested files; exit 1 on any regression."""
    from harness.gate import checkreport
    from harness.gate.check import run_check
    from harness.gate.findings import REGRESSION

    result = run_check(
        args.baseline,
        args.candidate,
        exact=args.exact,
        auto=args.auto,
        alpha=args.alpha,
        tolerance=args.tolerance,
        rename=args.rename,
    )
    md = checkreport.markdown(result)
    outputs = [(args.markdown, md), (args.junit, checkreport.junit(result) if args.junit else "")]
    for path, text in outputs:
        if path is not None:
            try:
                atomic_write_text(path, text)
            except OSError as exc:
                raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc
    sys.stdout.write(md)
    return 1 if result.count(REGRESSION) else 0


if __name__ == "__main__":
    sys.exit(main())
