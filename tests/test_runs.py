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


def test_corrupt_or_missing_input_is_a_config_error(tmp_path):
    d = _run(tmp_path, "r", done={"status": "ok"})
    (d / "done.json").write_text("{not json")
    with pytest.raises(ConfigError, match="done.json"):
        _ = discover(tmp_path)[0].status
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
