"""The regression check's outputs: a Markdown report (stdout and `--markdown`) and JUnit
XML (`--junit`, what CI systems display: a regression is a failure, an underpowered
comparison a skipped test)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from harness.gate.findings import MetricTest, Result


def _num(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    return "inf" if math.isinf(x) else f"{x:.4g}"


def metric_line(t: MetricTest) -> str:
    """One metric's numbers in one line."""
    if not t.testable:
        return (
            f"{t.metric}: {t.verdict}, {t.n_base} baseline / {t.n_cand} candidate "
            "finished runs (a comparison needs 2 of each)"
        )
    return (
        f"{t.metric}: {t.verdict}, IQM {_num(t.iqm_base)} -> {_num(t.iqm_cand)} "
        f"(diff {_num(t.iqm_cand - t.iqm_base)}, CI [{_num(t.ci[0])}, {_num(t.ci[1])}]), "
        f"Mann-Whitney p {t.p:.3g} (Holm {t.p_adj:.3g}), "
        f"detectable difference {_num(t.min_detectable)} (n {t.n_base}/{t.n_cand})"
    )


def _header(r: Result) -> list[str]:
    meta, s = r.baseline.meta, r.settings
    commits = ", ".join(c[:10] for c in meta.get("run_git_commits", []))
    lines = [
        f"# Regression check ({r.mode})",
        "",
        f"- mode: **{r.mode}**: {r.reason}",
        f"- baseline: `{r.baseline.path}` (profile {r.baseline.profile}, {meta.get('runs')} runs, "
        f"saved {meta.get('saved')}, run commits {commits or 'unknown'})",
        f"- candidate: `{r.candidate}`",
    ]
    if s["rename"]:
        pairs = ", ".join(f"{c} as {b}" for c, b in s["rename"].items())
        lines.append(f"- candidate variants compared as: {pairs}")
    if r.mode == "statistical":
        lines.append(
            f"- alpha {s['alpha']} (Holm-adjusted over all tests), bootstrap "
            f"{s['bootstrap_reps']} reps, CI level {1 - s['alpha']:.0%}, power {s['power']}; "
            f"underpowered: the smallest detectable difference exceeds {s['tolerance']:.0%} "
            "of the baseline IQM"
        )
    return lines


def markdown(r: Result) -> str:
    lines = _header(r) + [""]
    if r.mode == "statistical":
        lines += [
            "| variant | env | metric | n base/cand | IQM base | IQM cand | diff [CI] "
            "| p (Holm) | detectable diff | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for f in r.findings:
            for t in f.tests:
                lines.append(
                    f"| {f.variant} | {f.env} | {t.metric} | {t.n_base}/{t.n_cand} "
                    f"| {_num(t.iqm_base)} | {_num(t.iqm_cand)} "
                    f"| {_num(t.iqm_cand - t.iqm_base)} [{_num(t.ci[0])}, {_num(t.ci[1])}] "
                    f"| {t.p:.3g} ({t.p_adj:.3g}) | {_num(t.min_detectable)} | {t.verdict} |"
                )
        lines += ["", "| variant | env | verdict |", "|---|---|---|"]
        lines += [f"| {f.variant} | {f.env} | **{f.verdict}** |" for f in r.findings]
    else:
        lines += ["| variant | env | seed | verdict | files |", "|---|---|---|---|---|"]
        lines += [
            f"| {f.variant} | {f.env} | {f.seed} | **{f.verdict}** | {f.summary} |"
            for f in r.findings
        ]
    counts = {v: r.count(v) for v in ("regression", "improvement", "underpowered", "pass")}
    overall = "REGRESSION" if counts["regression"] else "PASS"
    tally = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    lines += ["", f"**Overall: {overall}** ({tally})"]
    if r.notes:
        lines += ["", "Not compared:", *[f"- {n}" for n in r.notes]]
    return "\n".join(lines) + "\n"


def junit(r: Result) -> str:
    """JUnit XML: one test case per (variant, env) (statistical) or run (exact)."""
    suite = ET.Element(
        "testsuite",
        name=f"mbrl-bench check ({r.mode})",
        tests=str(len(r.findings)),
        failures=str(r.count("regression")),
        skipped=str(r.count("underpowered")),
        errors="0",
    )
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="mode", value=r.reason)
    for f in r.findings:
        name = f.env if f.seed is None else f"{f.env}/seed{f.seed}"
        case = ET.SubElement(suite, "testcase", classname=f.variant, name=name, time="0")
        if f.verdict == "regression":
            ET.SubElement(case, "failure", message=f"regression: {f.summary}", type="regression")
        elif f.verdict == "underpowered":
            ET.SubElement(case, "skipped", message=f"underpowered: {f.summary}")
        ET.SubElement(case, "system-out").text = f"{f.verdict}: {f.summary}"
    root = ET.Element("testsuites", name="mbrl-bench check")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
