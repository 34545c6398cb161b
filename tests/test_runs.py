"""harness.analysis.runs: the loader every reader of run directories shares."""

import pytest
from runfixtures import write_run_dir

from harness.analysis.runs import INCOMPLETE, Run, discover
from harness.errors import ConfigError


def _run(root, name, *, done=None, eval_rows=None, **config):
    base = {"algo": "mbpo", "env": "hopper", "seed": 0, "profile": "smoke"}
    tables = {} if eval_rows is None else {"eval": ("step,episode,return,length", eval_rows)}
    return write_run_dir(root / name, {**base, **config}, tables=tables, done=done)


def test_discover_reads_status_labels_and_curves(tmp_path):
    _run(tmp_path, "a/seed0", done={"status": "ok"}, eval_rows=[(10, 0, 1.0, 5), (10, 1, 3.0, 5)],
         variant="mbpo")  # fmt: skip
    _run(tmp_path, "a/seed1", seed=1, done={"status": "failed: non-finite loss"})
    _run(tmp_path, "b/seed2", seed=2, algo="pmac")
    runs = discover(tmp_path)
    assert [r.status for r in runs] == ["ok", "failed: non-finite loss", INCOMPLETE]
    assert [r.ok for r in runs] == [True, False, False]
    assert runs[0].key() == ("mbpo", "hopper", 0)
    assert runs[2].variant == "pmac"  # default: the algorithm
    curve = runs[0].eval_curve()
    assert curve.to_dict("list") == {"step": [10], "return": [2.0], "length": [5.0]}
    assert runs[1].eval_curve().empty and runs[1].table("model") is None


def test_a_missing_runs_root_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        discover(tmp_path / "nope")


def test_model_errors_select_the_prediction_target(tmp_path):
    """model.csv with a `target` column: state and reward rows apart; without it (older
    runs) every row is a state error."""
    new = write_run_dir(tmp_path / "new", {"algo": "mbpo", "env": "hopper", "seed": 0,
                                           "profile": "smoke"},
                        tables={"model": ("step,split,target,error",
                                          [(5, "local", "state", 0.1), (5, "local", "reward", 9.0),
                                           (5, "global", "state", 0.3)])})  # fmt: skip
    old = write_run_dir(tmp_path / "old", {"algo": "mbpo", "env": "hopper", "seed": 1,
                                           "profile": "smoke"},
                        tables={"model": ("step,split,error", [(5, "local", 0.2)])})  # fmt: skip
    a, b = Run(new), Run(old)
    assert a.model_errors().to_dict("list") == {"step": [5, 5], "split": ["local", "global"],
                                                "error": [0.1, 0.3]}  # fmt: skip
    assert a.model_errors("reward")["error"].tolist() == [9.0]
    assert a.mean_of("model", "error", ("split", "local")) == 0.1  # the state error only
    assert b.model_errors()["error"].tolist() == [0.2] and b.model_errors("reward").empty


GOOD = [(500, 0, 1.0, 5), (500, 1, 3.0, 5), (1000, 0, 4.0, 5), (1000, 1, 6.0, 5)]
DONE = {"status": "ok", "final_return": 5.0, "env_steps": 1000}


def _eval_text(rows):
    return "step,episode,return,length\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda d: (d / "eval.csv").write_text(_eval_text(GOOD)[:-9]), "eval.csv: truncated"),
        (lambda d: (d / "eval.csv").write_text(_eval_text(GOOD)[:-5] + "\n"),
         "eval.csv: line 5 has 3 fields, the header 4"),
        (lambda d: (d / "eval.csv").write_text(_eval_text([*GOOD[:3], (1000, 1, "nan", 5)])),
         "eval.csv: line 5: return is nan"),
        (lambda d: (d / "eval.csv").write_text(_eval_text([*GOOD[:3], (1000, 1, "inf", 5)])),
         "eval.csv: line 5: return is inf"),
        (lambda d: (d / "eval.csv").write_text(_eval_text([(500, 0, "abc", 5), *GOOD[1:]])),
         "eval.csv: line 2: return 'abc' is not a number"),
        (lambda d: (d / "eval.csv").write_text("step,episode,return,length\n"),
         "eval.csv: no rows, only a header"),
        (lambda d: (d / "eval.csv").write_text(""), "eval.csv: empty"),
        (lambda d: (d / "eval.csv").unlink(), "eval.csv missing"),
        (lambda d: (d / "eval.csv").write_text(_eval_text(GOOD[:2])),
         "eval.csv ends at step 500, done.json's run evaluates at 1000"),
        (lambda d: (d / "done.json").write_text('{"status": "ok", "final_return": 9.0, '
                                                '"env_steps": 1000}'),
         "eval.csv's last mean return 5.0 != done.json's final_return 9.0"),
        (lambda d: (d / "done.json").write_text("{not json"), "done.json unreadable"),
        (lambda d: (d / "config.json").write_text("{not json"), "config.json unreadable"),
        (lambda d: (d / "config.json").unlink(), "config.json missing"),
        (lambda d: (d / "model.csv").write_text("step,split,error\n500,local,nan\n"),
         "model.csv: line 2: error is nan"),
        (lambda d: (d / "compounding.csv").write_text("step,horizon,error\n500,1\n"),
         "compounding.csv: line 2 has 2 fields"),
    ],
    ids=["truncated-mid-line", "short-last-row", "nan", "inf", "non-numeric", "header-only",
         "empty", "missing", "ends-early", "final-return-differs", "done-json", "config-json",
         "no-config-json", "model-nan", "compounding-short"],
)  # fmt: skip
def test_a_damaged_file_makes_the_run_damaged(tmp_path, damage, reason):
    d = _run(tmp_path, "smoke/mbpo/hopper/seed0", done=DONE, eval_rows=GOOD,
             hyperparameters={"eval_every": 500})  # fmt: skip
    assert discover(tmp_path)[0].status == "ok"
    damage(d)
    (run,) = discover(tmp_path)
    assert run.status.startswith(f"damaged: {reason}"), run.status
    assert not run.ok
    assert run.key() == ("mbpo", "hopper", 0)  # from the path when config.json is damaged


def test_tolerated_additions_keep_the_run_ok(tmp_path):
    """critic.csv (optional) and a `target` column in model.csv, nan in train.csv's losses."""
    d = _run(tmp_path, "smoke/mbpo/hopper/seed0", done=DONE, eval_rows=GOOD)
    (d / "critic.csv").write_text("step,q_bias\n500,0.5\n")
    (d / "model.csv").write_text("step,split,target,error\n500,local,state,0.1\n"
                                 "500,local,reward,0.2\n")  # fmt: skip
    (d / "train.csv").write_text("step,wall_s,critic_loss\n500,1.0,nan\n")
    assert discover(tmp_path)[0].status == "ok"


def test_only_seed_directories_are_runs(tmp_path):
    _run(tmp_path, "smoke/mbpo/hopper/seed0", done=DONE, eval_rows=GOOD)
    _run(tmp_path, "smoke/mbpo/hopper/seed0.bak", done=DONE, eval_rows=GOOD)
    _run(tmp_path, "smoke/mbpo/hopper/old", done=DONE, eval_rows=GOOD)
    (tmp_path / "smoke/mbpo/hopper/seed1").mkdir()  # made by Snakemake, job never started
    assert [r.path.name for r in discover(tmp_path)] == ["seed0"]
