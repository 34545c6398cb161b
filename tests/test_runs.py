"""harness.analysis.runs: the loader every reader of run directories shares."""

import pytest
from runfixtures import write_run_dir

from harness.analysis.runs import INCOMPLETE, discover
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
    assert curve.to_dict("list") == {"step": [10], "return": [2.0]}
    assert runs[1].eval_curve().empty and runs[1].table("model") is None


def test_corrupt_or_missing_input_is_a_config_error(tmp_path):
    d = _run(tmp_path, "r", done={"status": "ok"})
    (d / "done.json").write_text("{not json")
    with pytest.raises(ConfigError, match="done.json"):
        _ = discover(tmp_path)[0].status
    with pytest.raises(ConfigError, match="does not exist"):
        discover(tmp_path / "nope")
