"""`mbrl-bench report`: one self-contained HTML page (figures embedded as base64 PNG,
no external resources) from the aggregation tables, the figure manifest, the run
directories' provenance and Snakemake's benchmark files.

Order: the profile banner (repeated on every printed page), one plain-words sentence per
claim, the claims table with the verdict rule (each row linking to the figure that shows
its statistic), one section per experiment (figures, skipped figures and why, a reading
computed from the numbers), compute cost, budgets, every run with its provenance, and the
failed / incomplete / missing runs.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.numbers import fmt
from harness.analysis.runs import discover
from harness.analysis.stats import MIN_SEEDS
from harness.errors import ConfigError
from harness.job import provenance
from harness.job.rundir import atomic_write_text

CSS = """
body{font-family:sans-serif;max-width:1200px;margin:3.5em auto 2em;padding:0 1em;color:#222}
.banner{position:fixed;top:0;left:0;right:0;background:#fff3cd;border-bottom:1px solid #c9a;
 padding:.4em 1em;font-weight:bold;z-index:9}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#eee}.supported{background:#d4edda}.contradicted{background:#f8d7da}
.inconclusive{background:#fff3cd}img{max-width:100%}figure{margin:1em 0}
figcaption{font-size:.85em;color:#555}.skip{color:#a00}
ul.claims li{margin:.25em 0}
"""


def esc(x: Any) -> str:
    return html.escape(fmt(x))


def table_html(
    df: pd.DataFrame,
    cls_col: str | None = None,
    cells: dict[str, Callable[[Any], str]] | None = None,
) -> str:
    """An HTML table of `df`; `cells` maps a column to a function giving its cell's HTML
    (otherwise the value, formatted and escaped)."""
    if df.empty:
        return "<p>(none)</p>"
    cells = cells or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for _, r in df.iterrows():
        cls = f' class="{html.escape(str(r[cls_col]))}"' if cls_col else ""
        tds = "".join(
            f"<td>{cells[c](v) if c in cells else esc(v)}</td>"
            for c, v in zip(df.columns, r.values, strict=True)
        )
        rows.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def anchor(name: str) -> str:
    return f"fig-{name}"


def figure_links(names: Any, manifest: dict[str, Any]) -> str:
    """Links to the figures named (space-separated) in a claim row; a figure that was not
    drawn says so and why."""
    out = []
    for name in str(names if isinstance(names, str) else "").split():
        entry = manifest.get(name)
        if entry is None:
            out.append(f"{html.escape(name)} (no figure)")
        elif "skipped" in entry:
            out.append(f"{html.escape(name)} (not drawn: {html.escape(entry['skipped'])})")
        else:
            out.append(f'<a href="#{anchor(name)}">{html.escape(entry["title"])}</a>')
    return "<br>".join(out) or "n/a"


def _read(agg_dir: Path, name: str) -> pd.DataFrame:
    p = agg_dir / f"{name}.csv"
    if not p.exists():
        raise ConfigError(f"{p} missing: run `mbrl-bench aggregate` first")
    try:
        return pd.read_csv(p, keep_default_na=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _ci(row: Any) -> str:
    return f"{fmt(row['estimate'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]"


def _estimated(df: pd.DataFrame, exp: str) -> pd.DataFrame:
    """The rows of `exp` with an estimate (none when the table is empty)."""
    if df.empty:
        return df
    return df[df["experiment"] == exp].dropna(subset=["estimate"])


def reading(exp: str, t: dict[str, pd.DataFrame]) -> str:
    """A short reading of one experiment, computed from its numbers."""
    out = []
    iv = t["intervals"]
    iqm = iv[(iv.get("experiment") == exp) & (iv.get("metric") == "iqm")] if not iv.empty else iv
    if not iqm.empty:
        iqm = iqm.sort_values("estimate", ascending=False)
        parts = [f"{r['variant']} {_ci(r)} (n={r['n_seeds']})" for _, r in iqm.iterrows()]
        out.append("IQM of the final normalised score, 95% CI: " + "; ".join(parts) + ".")
        if len(iqm) > 1:
            a, b = iqm.iloc[0], iqm.iloc[1]
            if min(a["n_seeds"], b["n_seeds"]) < MIN_SEEDS:
                out.append(f"Fewer than {MIN_SEEDS} seeds: no ordering is claimed.")
            elif a["ci_low"] > b["ci_high"]:
                out.append(f"{a['variant']} is ahead of every other variant beyond the CIs.")
            else:
                out.append(
                    f"The CIs of {a['variant']} and {b['variant']} overlap: no ordering "
                    "of the top two is established at this budget."
                )
    imp = t["improvement"]
    for _, r in _estimated(imp, exp).iterrows():
        budget = r.get("budget", "same")
        unequal = (
            f" (unequal budgets: {budget})" if isinstance(budget, str) and budget != "same" else ""
        )
        what = {"-local_error": " local error <", "-compounding_error": " compounding error <"}
        rel = what.get(r["statistic"], " >")
        out.append(f"P({r['x']}{rel} {r['y']}) = {_ci(r)}{unequal}.")
    sp = t["steps_to_threshold"]
    for _, r in _estimated(sp, exp).iterrows():
        ci = f"95% CI {fmt(r['ci_low'])}-{fmt(r['ci_high'])}"
        if r["estimate"] == 0:
            out.append(
                f"On {r['env']}, PMAC did not reach MBPO's final IQM return within "
                f"{fmt(r['last_step'])} steps (ratio 0, {ci})."
            )
        else:
            out.append(
                f"On {r['env']}, PMAC reached MBPO's final IQM return "
                f"{fmt(r['estimate'])}x sooner ({ci})."
            )
    return " ".join(html.escape(s) for s in out) or "No complete runs: nothing to read yet."


def _figures(fig_dir: Path, manifest: dict[str, Any], exp: str) -> str:
    parts, skipped = [], []
    for name, entry in sorted(manifest.items(), key=lambda kv: kv[1]["order"]):
        if entry["experiment"] != exp:
            continue
        if "skipped" in entry:
            skipped.append(
                f"<li>{html.escape(entry['title'])}: {html.escape(entry['skipped'])}</li>"
            )
            continue
        data = base64.b64encode((fig_dir / f"{name}.png").read_bytes()).decode()
        notes = "".join(f"<br>Left out: {html.escape(n)}." for n in entry.get("notes", []))
        parts.append(
            f'<figure id="{anchor(name)}"><img alt="{html.escape(name)}" '
            f'src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(entry['title'])} ({html.escape(name)}.png/.pdf)"
            f"{notes}</figcaption></figure>"
        )
    if skipped:
        parts.append(f"<p class=skip>Figures not drawn:</p><ul>{''.join(skipped)}</ul>")
    return "".join(parts)


def compute_cost(bench_dir: Path) -> pd.DataFrame:
    """Per (variant, env): jobs, mean wall s, total CPU s, peak RSS MB (Snakemake tsv)."""
    rows = []
    for p in sorted(bench_dir.rglob("*.tsv")) if bench_dir.is_dir() else []:
        try:
            df = pd.read_csv(p, sep="\t")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {p}: {exc}".splitlines()[0]) from exc
        rel = p.relative_to(bench_dir).parts
        rows.append(
            {
                "variant": rel[0] if len(rel) > 2 else "?",
                "env": rel[1] if len(rel) > 2 else "?",
                "s": df["s"].mean(),
                "cpu_time": df["cpu_time"].mean(),
                "max_rss": df["max_rss"].max(),
            }
        )
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows).replace("-", math.nan)
    g = df.groupby(["variant", "env"], sort=True)
    return pd.DataFrame(
        {
            "jobs": g.size(),
            "mean wall s": g["s"].mean(),
            "total CPU s": g["cpu_time"].sum(),
            "peak RSS MB": g["max_rss"].max(),
        }
    ).reset_index()


def runs_with_provenance(runs_root: Path, profile: str, runs: pd.DataFrame) -> pd.DataFrame:
    prov = {r.key(): r.provenance for r in discover(runs_root / profile)}
    rows = []
    for _, r in runs.iterrows():
        p = prov.get((r["variant"], r["env"], int(r["seed"])), {})
        pk = p.get("packages", {})
        rows.append(
            {
                "variant": r["variant"],
                "env": r["env"],
                "seed": r["seed"],
                "status": r["status"],
                "final return": r["final_return"],
                "mean length": r.get("final_length", math.nan),
                "normalised": r["final_normalised"],
                "wall s": r["wall_s"],
                "commit": provenance.joined(p, "git_commit", width=10),
                "dirty": provenance.dirty(p) if p else "",
                "cpu": provenance.joined(p, "cpu"),
                "kernels": provenance.joined(p, "cpu_capability"),  # blank before 2026-12-04
                "torch": pk.get("torch", ""),
                "gymnasium": pk.get("gymnasium", ""),
                "mujoco": pk.get("mujoco", ""),
                "python": p.get("python", ""),
            }
        )
    return pd.DataFrame(rows)


def published_section(df: pd.DataFrame) -> list[str]:
    """Our curves beside the published ones (published.csv) every 5,000 steps and at the
    last matched step; nothing when no curve has a published counterpart."""
    if df.empty:
        return []
    last = df.groupby(["variant", "env"])["step"].transform("max")
    shown = df[(df["step"] % 5000 == 0) | (df["step"] == last)]
    table = pd.DataFrame(
        {
            "variant": shown["variant"],
            "env": shown["env"],
            "step": shown["step"],
            "our IQM return [95% CI]": [
                f"{fmt(r.iqm)} [{fmt(r.ci_low)}, {fmt(r.ci_high)}]" for r in shown.itertuples()
            ],
            "mean episode length": shown["mean_length"].map(fmt),
            "seeds": shown["n_seeds"],
            "published mean +- std": [
                f"{fmt(r.published_mean)} +- {fmt(r.published_std)}" for r in shown.itertuples()
            ],
            "source": shown["source"],
        }
    )
    return [
        "<h2>Against the published curves</h2>",
        "<p>Our IQM return with its 95% stratified-bootstrap interval at the published "
        "curve's steps (interpolated linearly between its points), every 5,000 steps and at "
        "the last; the published spread is its standard deviation over the paper's seeds. "
        "Each source's README says how its steps were matched to ours. No verdict is drawn "
        "here. All matched steps: published.csv.</p>",
        table_html(table),
    ]


def report(profile: str, runs_root: Path, agg_root: Path, bench_root: Path, out_root: Path):
    agg_dir = agg_root / profile
    if not (agg_dir / "summary.json").exists():
        raise ConfigError(f"{agg_dir}/summary.json missing: run `mbrl-bench aggregate` first")
    if not (runs_root / profile).is_dir():
        raise ConfigError(f"runs directory {runs_root / profile} does not exist")
    summary = json.loads((agg_dir / "summary.json").read_text())
    names = ("claims", "runs", "intervals", "improvement", "steps_to_threshold", "excluded",
             "published")  # fmt: skip
    t = {n: _read(agg_dir, n) for n in names}
    fig_dir = out_root / profile / "figures"
    manifest_path = fig_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}

    budgets = pd.DataFrame(summary["budgets"])
    if not budgets.empty:
        budgets = budgets[["variant", "env", "total_steps", "eval_every", "eval_episodes"]]
    budget_line = (
        "; ".join(
            f"{env}: {', '.join(sorted({fmt(s) for s in g['total_steps']}))} steps"
            for env, g in budgets.groupby("env")
        )
        if not budgets.empty
        else "no runs"
    )
    only = summary.get("envs")
    scope = f" | environments: {', '.join(only)} only" if only else ""
    banner = f"{summary['label']} (profile {profile}){scope} | budgets: {budget_line}"
    counts = ", ".join(f"{k}: {v}" for k, v in summary["status_counts"].items())
    claims = t["claims"][
        [
            "claim",
            "statistic",
            "estimate",
            "ci_low",
            "ci_high",
            "region",
            "n_seeds",
            "verdict",
            "budget",
            "figure",
            "note",
            "source",
        ]
    ]
    sentences = "".join(
        f'<li class="{html.escape(str(r["verdict"]))}">{html.escape(str(r["sentence"]))}</li>'
        for _, r in t["claims"].iterrows()
    )
    body = [
        f'<div class="banner">{html.escape(banner)}</div>',
        f"<h1>mbrl-bench report: {html.escape(profile)}</h1>",
        f"<p><b>{html.escape(summary['label'])}</b>. Runs expected: "
        f"{summary['runs_expected']}, found: {summary['runs_found']} ({html.escape(counts)}). "
        f"Bootstrap: {summary['bootstrap_reps']} stratified replicates, seed "
        f"{summary['bootstrap_seed']}, {int(summary['confidence'] * 100)}% percentile CIs."
        "</p>",
        "<h2>Claims</h2>",
        f"<ul class=claims>{sentences}</ul>",
        f"<p><b>Verdict rule.</b> {html.escape(summary['verdict_rule'])}</p>",
        table_html(claims, "verdict", {"figure": lambda v: figure_links(v, manifest)}),
    ]
    if not manifest:
        body.append("<p class=skip>No figures: run `mbrl-bench figures` first.</p>")
    body += published_section(t["published"])
    for exp in summary["experiment_order"]:
        spec = summary["experiments"][exp]
        body += [
            f"<h2>Experiment: {html.escape(exp)}</h2>",
            f"<p>{html.escape(spec['description'])}. Environments: "
            f"{html.escape(', '.join(spec['envs']))}; variants: "
            f"{html.escape(', '.join(spec['variants']))}.</p>",
            f"<p><b>Reading.</b> {reading(exp, t)}</p>",
            _figures(fig_dir, manifest, exp),
        ]
    cost = compute_cost(bench_root / profile)
    problems = t["runs"][t["runs"]["status"] != "ok"]
    body += [
        "<h2>Compute cost (Snakemake benchmark files)</h2>",
        table_html(cost)
        if not cost.empty
        else f"<p>No benchmark files under {html.escape(str(bench_root / profile))}.</p>",
        "<h2>Budgets</h2>",
        table_html(budgets),
        f"<h2>Failed, damaged, incomplete and missing runs ({len(problems)})</h2>",
        table_html(problems[["variant", "env", "seed", "status", "experiments"]]),
        "<h2>Left out of statistics</h2>",
        table_html(t["excluded"]),
        "<h2>Runs and provenance</h2>",
        table_html(runs_with_provenance(runs_root, profile, t["runs"])),
        f"<p><i>{html.escape(banner)}</i></p>",
    ]
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>mbrl-bench {profile}</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
    out = out_root / profile / "index.html"
    atomic_write_text(out, page)
    return out
