"""harness.job.experiments: the job list the pipeline, the aggregation and the gate share."""

import pytest

from harness.errors import ConfigError
from harness.job.config import parse_set
from harness.job.experiments import all_jobs, experiment_jobs


def test_smoke_profile_expands_every_experiment_and_shares_runs():
    exps = experiment_jobs("smoke")
    assert set(exps) == {
        "main", "alpha_sweep", "mechanism", "cartpole", "horizon", "fidelity", "weighting"
    }  # fmt: skip
    assert {j.seed for js in exps.values() for j in js} == {0, 1}
    gate = experiment_jobs("smoke", gate=True)["regress"]  # make regress only, not `all`
    assert {j.seed for j in gate} == set(range(15))  # the gate needs more seeds
    jobs = all_jobs("smoke")
    keys = [(j.variant, j.env, j.seed) for j in jobs]
    assert len(keys) == len(set(keys))
    # pmac on inverted_pendulum is in main, alpha_sweep, mechanism and weighting, trained once
    assert sum(1 for js in exps.values() for j in js if j.variant == "pmac") == 8
    assert keys.count(("pmac", "inverted_pendulum", 0)) == 1


def test_paper_profile_counts():
    exps = experiment_jobs("paper")
    assert len(exps["main"]) == 4 * 6 * 5  # PMAC, MBPO, PETS, SAC x 6 envs x 5 seeds
    assert len(exps["alpha_sweep"]) == 7 * 5  # 6 alphas + MBPO's uniform weighting
    assert len(exps["cartpole"]) == 6 * 20
    assert len(exps["fidelity"]) == 6 * 5  # jannerm's defaults + 5 suspects on Hopper
    assert len(exps["weighting"]) == 6 * 2 * 5  # 6 schemes on Hopper and Walker2d (Fig. 3g/h)


def test_fidelity_variants_set_the_suspects_switches():
    sets = {j.variant: parse_set(j.set_args()[1::2]) for j in all_jobs("paper")}
    assert sets["mbpo_alpha0.2"] == {"sac.autotune": False, "sac.alpha": 0.2}
    assert sets["mbpo_ramp"] == {"update_ramp": 5}
    assert sets["mbpo_refinit"] == {"sac.init": "glorot", "model.init": "truncated_normal"}
    assert sets["mbpo_patience6"] == {"model.patience": 6}
    assert sets["mbpo_actorfirst"] == {"sac.actor_first": True}


def test_set_args_round_trip_through_parse_set():
    job = next(j for j in all_jobs("paper") if j.variant == "mbpo_h5")
    assert job.set_args() == ["--set", "rollout_schedule=[20, 150, 5, 5]"]
    assert parse_set([job.set_args()[1]]) == {"rollout_schedule": [20, 150, 5, 5]}
    alpha = next(j for j in all_jobs("paper") if j.variant == "pmac_alpha0.5")
    assert parse_set([alpha.set_args()[1]]) == {"weighting.age.alpha": 0.5}


def test_unknown_profile_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown profile"):
        experiment_jobs("huge")


def test_weighting_variants_set_their_schemes():
    sets = {j.variant: parse_set(j.set_args()[1::2]) for j in all_jobs("paper")}
    schemes = {v: sets[v].get("weighting.scheme") for v in ("pdml", "mbpo_per", "mbpo_recall",
                                                            "mbpo_maper")}  # fmt: skip
    assert schemes == {"pdml": "policy_distance", "mbpo_per": "per", "mbpo_recall": "recall",
                       "mbpo_maper": "maper"}  # fmt: skip
    assert sets["mbpo_per"]["weighting.per.exponent"] == 0.6
    assert sets["mbpo_maper"]["weighting.maper.exponent"] == 0.5
