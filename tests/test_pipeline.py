"""The Snakemake pipeline: every profile's dry run lists exactly its jobs, the workflow
lints clean, and a bad profile value is rejected naming its key."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.errors import ConfigError
from harness.job.config import CONFIG_DIR, load_profile, validate_profile
from harness.job.experiments import all_jobs
from tests.conftest import REPO

SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def snakemake(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake on the repo's Snakefile with a scratch working directory (no results)."""
    env = {**os.environ, "PATH": f"{SNAKEMAKE.parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)


def job_counts(stdout: str) -> dict[str, int]:
    table = stdout.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_dry_run_lists_exactly_the_profiles_jobs(tmp_path, profile):
    proc = snakemake(tmp_path, "-n", "--configfile", str(CONFIG_DIR / f"{profile}.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = job_counts(proc.stdout)
    assert counts["train"] == len(all_jobs(profile))
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_default_profile_is_paper(tmp_path):
    proc = snakemake(tmp_path, "-n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert job_counts(proc.stdout)["train"] == len(all_jobs("paper"))


def test_lint_is_clean(tmp_path):
    proc = snakemake(tmp_path, "--lint", "--configfile", str(CONFIG_DIR / "smoke.yaml"))
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_bad_config_value_is_rejected_naming_the_key(tmp_path):
    bad = load_profile("smoke")
    bad["experiments"]["main"]["seeds"] = 0
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = snakemake(tmp_path, "-n", "--configfile", str(path))
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "profile: experiments.main.seeds: 0 is less than the minimum of 1" in out
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("stats", "bootstrap_reps"), "many", "stats.bootstrap_reps: 'many' is not of type"),
        (("resources", "default", "threads"), 0, "resources.default.threads: 0 is less than"),
        (("experiments", "main", "envs"), [], "experiments.main.envs: [] should be non-empty"),
        (("checkpoint_every",), -1, "checkpoint_every: -1 is less than the minimum of 0"),
        (("train", "sacc"), {}, "train: 'sacc' does not match any of the regexes"),
    ],
)
def test_schema_messages_name_the_key(path, value, message):
    data = load_profile("smoke")
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as err:
        validate_profile(data, "smoke.yaml")
    assert message in str(err.value)


def test_schema_knows_every_algorithm_family():
    from algorithms.registry import ALGORITHMS

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    pattern = next(iter(schema["properties"]["train"]["patternProperties"]))
    assert {a.family for a in ALGORITHMS.values()} <= set(re.findall(r"\w+", pattern))
    assert {a.family for a in ALGORITHMS.values()} | {"default"} == set(
        schema["properties"]["resources"]["properties"]
    )


def test_schema_rejects_a_stray_resources_key():
    data = load_profile("smoke")
    data["resources"]["gpu"] = {"threads": 1, "mem_mb": 1000, "runtime": 5}
    with pytest.raises(ConfigError) as err:
        validate_profile(data, "smoke.yaml")
    assert "resources: Additional properties are not allowed ('gpu' was unexpected)" in str(
        err.value
    )


def test_every_schema_property_has_a_description_and_optional_ones_a_default():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())

    def walk(node: dict, where: str):
        required = set(node.get("required", []))
        for name, prop in (node.get("properties") or {}).items():
            assert "description" in prop or "$ref" in prop, f"{where}.{name}: no description"
            if "$ref" not in prop and name not in required and "default" not in prop:
                assert "default:" in prop.get("description", ""), f"{where}.{name}: no default"
            yield from walk(prop, f"{where}.{name}")
        for sub in ("additionalProperties",):
            if isinstance(node.get(sub), dict):
                yield from walk(node[sub], f"{where}.*")
        yield where

    places = list(walk(schema, "profile"))
    places += [p for d in schema["$defs"].values() for p in walk(d, "$defs")]
    assert len(places) > 20


def _profile_file(tmp_path: Path, **changes) -> Path:
    data = load_profile("smoke")
    data["experiments"] = {"main": {"envs": ["inverted_pendulum"], "seeds": 1,
                                    "variants": ["pmac"]}}  # fmt: skip
    data.update(changes)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "block, message",
    [
        ({"mbpo": {"sac.lrr": 1e-3}}, "unknown key 'sac.lrr' for algorithm pmac"),
        ({"all": {"total_steps": "many"}}, "total_steps must be an integer, got 'many'"),
        ({"mbpo": {"weighting.age.alpha": 2.0}}, "alpha must be in (0, 1)"),
    ],
)
def test_dry_run_rejects_a_bad_train_block_naming_the_key(tmp_path, block, message):
    proc = snakemake(tmp_path, "-n", "--configfile", str(_profile_file(tmp_path, train=block)))
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def _train_pid(cwd: Path) -> int | None:
    """The `mbrl-bench train` process Snakemake started in `cwd`, if it is running."""
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            if Path(os.readlink(proc / "cwd")) == cwd and b"--profile-json" in cmd:
                if any(c.endswith(b"mbrl-bench") or c == b"harness.cli" for c in cmd):
                    return int(proc.name)
        except (OSError, ValueError):
            continue
    return None


def test_interrupted_pipeline_resumes_to_the_same_files(tmp_path):
    """A custom --configfile's train budget reaches the job; a job stopped by SIGTERM (a
    time limit) after a checkpoint, then Snakemake rerun, ends with the run files of an
    uninterrupted pipeline (wall-clock columns aside)."""
    import signal
    import time

    from tests.conftest import rows_without_wall_clock

    budget = {"total_steps": 1250, "warmup_steps": 250, "eval_every": 250, "eval_episodes": 1}
    train = {"all": budget, "mbpo": load_profile("smoke")["train"]["mbpo"]}
    config = _profile_file(tmp_path, train=train, checkpoint_every=250)
    run = Path("results/runs/smoke/pmac/inverted_pendulum/seed0")
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    ref.mkdir(), cut.mkdir()
    assert snakemake(ref, "runs", "--cores", "1", "--configfile", str(config)).returncode == 0

    env = {**os.environ, "PATH": f"{SNAKEMAKE.parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(cut), "runs", "--cores",
           "1", "--configfile", str(config)]  # fmt: skip
    first = subprocess.Popen(cmd, cwd=cut, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    log = cut / "results/logs/smoke/pmac/inverted_pendulum/seed0.log"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None:
        if log.exists() and "checkpoint at env step 5" in log.read_text():
            break
        time.sleep(0.2)
    pid = _train_pid(cut)
    assert pid is not None, log.read_text() if log.exists() else "no log"
    os.kill(pid, signal.SIGTERM)
    assert first.wait(timeout=300) != 0
    text = log.read_text()
    assert "stopped by SIGTERM after the checkpoint at env step" in text, text
    assert "exit code 75" in text
    assert (cut / run / "checkpoint.pt").exists() and not (cut / run / "done.json").exists()

    again = snakemake(cut, "runs", "--cores", "1", "--configfile", str(config))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resumed from the checkpoint at env step" in log.read_text()
    cfg = json.loads((cut / run / "config.json").read_text())
    assert cfg["hyperparameters"]["total_steps"] == 1250  # the --configfile's budget
    names = sorted(p.name for p in (ref / run).glob("*.csv"))
    assert names == sorted(p.name for p in (cut / run).glob("*.csv")) and "eval.csv" in names
    for name in names:
        assert rows_without_wall_clock(cut / run / name) == rows_without_wall_clock(
            ref / run / name
        )
    assert (cut / run / "eval.csv").read_bytes() == (ref / run / "eval.csv").read_bytes()
    assert not (cut / run / "checkpoint.pt").exists()
