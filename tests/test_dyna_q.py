"""DQN and Dyna-Q (the CartPole study, docs/ambiguities.md D1-D11): the dynamics model fits
CartPole, imagined rollouts add K x H transitions minus terminations (and stop where the
members disagree), both agents take exactly their real budget, the CLI run is
deterministic, bad input is rejected."""

import csv
import io
import json

import numpy as np
import pytest
import torch

from algorithms import dqn, dyna_q
from algorithms.dqn import DQNConfig, QAgent, QConfig, epsilon
from algorithms.dyna_q import DiscreteModel, DynaQConfig, imagine
from algorithms.parts import diagnostics as diag
from algorithms.parts import envs
from algorithms.parts.buffer import ReplayBuffer
from algorithms.parts.ensemble import ProbabilisticEnsemble
from algorithms.parts.envs import make_env, resolve_env
from algorithms.parts.seeding import seed_everything
from algorithms.registry import ALGORITHMS
from harness.cli import main
from harness.job.config import load_profile, resolve
from harness.job.rundir import WALL_CLOCK_SUFFIX

CPU = torch.device("cpu")
CARTPOLE = resolve_env("cartpole")
STUDY = ("dqn", "dyna_q", "dyna_q_adaptive")


# These networks are tiny: a second torch thread only adds synchronisation (on a busy
# 2-core machine, fused Adam took 20 ms a step with 2 threads, 0.1 ms with 1).
pytestmark = pytest.mark.usefixtures("one_thread")


def random_transitions(seed: int, n: int) -> ReplayBuffer:
    env = make_env(CARTPOLE, seed)
    buf = ReplayBuffer(n, CARTPOLE.obs_dim, 1, CPU)
    obs, _ = env.reset()
    for _ in range(n):
        act = env.action_space.sample()
        nxt, rew, terminated, truncated, _ = env.step(act)
        buf.add(obs, [float(act)], rew, nxt, terminated)
        obs = nxt
        if terminated or truncated:
            obs, _ = env.reset()
    return buf


def test_dynamics_model_fits_cartpole():
    """One fit on 1,000 random transitions (the warm-up): the one-step error on 1,000
    fresh ones is below 5% of the error of predicting "no change" (s' = s) and below 2e-3
    in raw units (measured: 2.5e-4, 0.8% of the naive 0.031)."""
    torch.manual_seed(0)
    train, test = random_transitions(0, 1000), random_transitions(1, 1000)
    model = DiscreteModel(ProbabilisticEnsemble(4, 2, dyna_q._model_config(), CPU), 2, False)
    model.fit(train, torch.Generator().manual_seed(0))
    err = diag.one_step_errors(model, test.obs, test.act, test.next_obs, test.rew, CPU)["state"]
    naive = float((test.next_obs - test.obs).pow(2).mean())
    assert err < 0.05 * naive and err < 2e-3, (err, naive)


class _Shift:
    """A model that adds 1 to every state coordinate, reward 1; disagreement = x coordinate."""

    def step(self, obs, act, gen):
        return obs + 1.0, torch.ones(obs.shape[0]), obs[:, 0].clone()


def _terminate_at_3(next_obs):
    return next_obs[:, 0] >= 3.0


def _agent():
    torch.manual_seed(0)
    return QAgent(2, 2, QConfig(hidden=8), CPU)


def test_imagine_adds_k_times_h_minus_terminations():
    starts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [-10.0, 0.0]])
    gen = torch.Generator().manual_seed(0)
    (obs, act, rew, nxt, done), cut = imagine(_Shift(), _agent(), starts, 5, 0.5, None, gen)
    assert obs.shape == (4 * 5, 2) and act.shape == (20, 1) and cut == 0  # K x H
    assert not done.any()
    batch, _ = imagine(_Shift(), _agent(), starts, 5, 0.5, _terminate_at_3, gen)
    # start 2 terminates after 1 step, start 1 after 2, start 0 after 3; start -10 runs 5
    assert batch[0].shape[0] == 1 + 2 + 3 + 5
    assert int(batch[4].sum()) == 3
    torch.testing.assert_close(batch[3], batch[0] + 1)
    assert set(batch[1].flatten().tolist()) <= {0.0, 1.0}  # action indices


def test_imagine_stops_rollouts_where_members_disagree():
    # disagreement = x coordinate; threshold 1.5: starts 0 and 1 run until x > 1.5
    starts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    gen = torch.Generator().manual_seed(0)
    batch, cut = imagine(_Shift(), _agent(), starts, 4, 0.0, None, gen, threshold=1.5)
    # start 0: x = 0, 1 trusted, x = 2 cut -> 2 steps; start 1: 1 step; start 5: none
    assert batch[0].shape[0] == 3 and cut == 3
    assert float(batch[0][:, 0].max()) <= 1.5


def test_dyna_q_adds_k_times_h_per_real_step_with_the_real_model():
    """The real ensemble, no termination: exactly K x H imagined transitions per call."""
    torch.manual_seed(0)
    cfg = DynaQConfig()
    model = DiscreteModel(ProbabilisticEnsemble(4, 2, cfg.model, CPU), 2, False)
    starts = torch.randn(cfg.rollouts, 4) * 0.05
    batch, _ = imagine(model, _agent_for(4), starts, cfg.horizon, 0.04, None, torch.Generator())
    assert batch[0].shape[0] == cfg.rollouts * cfg.horizon == 75


def _agent_for(obs_dim):
    return QAgent(obs_dim, 2, QConfig(hidden=8), CPU)


def test_disagreement_is_zero_for_identical_members_and_positive_otherwise():
    torch.manual_seed(0)
    cfg = dyna_q.adaptive_config()
    ens = ProbabilisticEnsemble(4, 2, cfg.model, CPU)
    model = DiscreteModel(ens, 2, False)
    obs, act = torch.randn(16, 4), torch.ones(16, 1)
    assert (model.disagreement(obs, act) > 0).all()
    with torch.no_grad():
        for p in ens.mlp.parameters():
            p.copy_(p[:1].expand_as(p))
    torch.testing.assert_close(model.disagreement(obs, act), torch.zeros(16))


def test_epsilon_schedule_is_sb3_linear_from_step_zero():
    q = QConfig()
    assert epsilon(0, 5000, q) == 1.0
    assert epsilon(400, 5000, q) == pytest.approx(1.0 + 0.5 * (0.04 - 1.0))
    assert epsilon(800, 5000, q) == pytest.approx(0.04)
    assert epsilon(4000, 5000, q) == pytest.approx(0.04)


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
@pytest.mark.parametrize("algo", STUDY)
def test_every_profile_gives_the_study_budget(algo, profile):
    cfg = resolve(ALGORITHMS[algo], CARTPOLE, load_profile(profile), {})
    assert (cfg.total_steps, cfg.warmup_steps, cfg.eval_episodes) == (5000, 1000, 50)
    assert cfg.total_steps % cfg.eval_every == 0  # the last evaluation ends the budget


class _Recorder:
    def __init__(self):
        self.evals, self.rows, self.tables = [], [], {}

    def eval(self, step, returns, lengths):
        self.evals.append((step, len(returns)))

    def train(self, row):
        self.rows.append(row)

    def log(self, message):
        pass

    def progress(self, *a):
        pass

    def table(self, name, rows):
        self.tables.setdefault(name, []).extend(rows)


@pytest.mark.parametrize("algo", STUDY)
def test_agents_take_exactly_the_real_budget(monkeypatch, algo):
    """Warm-up included, the training env is stepped exactly `total_steps` times and every
    real transition is stored once; evaluation steps feed no buffer."""
    steps, made = [], []

    def counting_make_env(spec, seed):
        env = make_env(spec, seed)
        made.append(env)
        if len(made) == 1:  # the first env made is the training env
            inner = env.step

            def step(action):
                steps.append(action)
                return inner(action)

            env.step = step
        return env

    monkeypatch.setattr(envs, "make_env", counting_make_env)  # make_env_pair calls it
    small = {"total_steps": 400, "warmup_steps": 100, "eval_every": 200, "eval_episodes": 2}
    cfg = resolve(ALGORITHMS[algo], CARTPOLE, load_profile("paper"), small)
    rec = _Recorder()
    summary = ALGORITHMS[algo].train(cfg, CARTPOLE, seed_everything(0), CPU, rec)
    assert len(steps) == summary["real_transitions"] == 400
    assert rec.evals == [(200, 2), (400, 2)]
    assert [r["step"] for r in rec.rows] == [200, 400]
    assert rec.rows[-1]["q_updates"] == 400 - 100 + 1  # one Q update per real step
    if algo == "dqn":
        assert not rec.tables
        return
    row = rec.rows[-1]
    assert 0 < row["imagined"] <= cfg.rollouts * cfg.horizon
    # The Q-buffer holds every real transition and every imagined one (no overflow here).
    imagined = sum(r["imagined"] * n for r, n in zip(rec.rows, (101, 200), strict=True))
    assert row["q_buffer_size"] == pytest.approx(400 + imagined)
    assert set(rec.tables) == {"model", "compounding", "coadaptation", "visitation"}
    sources = {r["source"] for r in rec.tables["visitation"]}
    assert sources == {"policy", "uniform", "imagined"}


def test_adaptive_horizon_is_logged_and_bounded(monkeypatch):
    cfg = dyna_q.adaptive_config()
    small = dict(total_steps=400, warmup_steps=100, eval_every=200, eval_episodes=2)
    cfg = resolve(ALGORITHMS["dyna_q_adaptive"], CARTPOLE, load_profile("paper"), small)
    rec = _Recorder()
    ALGORITHMS["dyna_q_adaptive"].train(cfg, CARTPOLE, seed_everything(1), CPU, rec)
    for row in rec.rows:
        assert 0 < row["disagreement_threshold"] < 1  # in units of the state's std
        assert 0 <= row["rollout_length"] <= cfg.horizon == 5
        assert row["imagined"] == pytest.approx(row["rollout_length"] * cfg.rollouts)


def test_invalid_configs_rejected():
    with pytest.raises(ValueError, match="multiple of eval_every"):
        DQNConfig(total_steps=5000, eval_every=300)
    with pytest.raises(ValueError, match="needs model.members >= 2"):
        DynaQConfig(horizon_mode="adaptive")
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        DynaQConfig(horizon=0)
    with pytest.raises(ValueError, match="q.eps_end"):
        QConfig(eps_end=1.5)
    with pytest.raises(ValueError, match="needs a discrete action space"):
        dqn.train(DQNConfig(), resolve_env("inverted_pendulum"), seed_everything(0), CPU, None)


@pytest.mark.parametrize("algo", ["dqn", "dyna_q"])
def test_continuous_env_rejected_one_line_exit_2(tmp_path, capsys, algo):
    out = tmp_path / "runs" / "r"
    args = ["train", "--algo", algo, "--env", "inverted_pendulum", "--seed", "0"]
    assert main([*args, "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"mbrl-bench: error: {algo} needs discrete actions; "
                     "inverted_pendulum is continuous"]  # fmt: skip
    assert not (tmp_path / "runs").exists()


def _without_wall_clock(path):
    rows = list(csv.reader(io.StringIO(path.read_text())))
    keep = [i for i, c in enumerate(rows[0]) if not c.endswith(WALL_CLOCK_SUFFIX)]
    return [[r[i] for i in keep] for r in rows]


TINY = ["--set", "total_steps=600", "--set", "warmup_steps=200", "--set", "eval_every=200",
        "--set", "eval_episodes=3", "--profile", "smoke", "--threads", "1"]  # fmt: skip


@pytest.mark.parametrize("algo", ["dqn", "dyna_q"])
def test_cli_run_writes_the_run_directory_deterministically(tmp_path, run_cli, algo):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        run_cli("train", "--algo", algo, "--env", "cartpole", "--seed", "2", *TINY,
                "--out", str(out))  # fmt: skip
    files = ["eval.csv", "train.csv"]
    if algo == "dyna_q":
        files += ["model.csv", "compounding.csv", "coadaptation.csv", "visitation.csv"]
    else:
        assert not (a / "model.csv").exists() and not (a / "visitation.csv").exists()
    for name in files:
        assert _without_wall_clock(a / name) == _without_wall_clock(b / name), name
    assert (a / "eval.csv").read_bytes() == (b / "eval.csv").read_bytes()
    done = json.loads((a / "done.json").read_text())
    assert done["status"] == "ok" and done["real_transitions"] == 600
    assert done["claim_threshold"] == 195.0
    assert done["reaches_threshold"] == (done["final_return"] >= 195.0)
    rows = list(csv.DictReader(io.StringIO((a / "eval.csv").read_text())))
    assert [int(r["step"]) for r in rows] == [200] * 3 + [400] * 3 + [600] * 3
    final = np.mean([float(r["return"]) for r in rows if r["step"] == "600"])
    assert done["final_return"] == pytest.approx(final)
    train = list(csv.DictReader(io.StringIO((a / "train.csv").read_text())))
    if algo == "dyna_q":
        assert {r["horizon"] for r in train} == {"3"}
        assert all(0 < float(r["imagined"]) <= 75 for r in train)


@pytest.mark.benchmark(group="dyna-q")
@pytest.mark.parametrize("algo", ["dyna_q", "dyna_q_adaptive"])
def test_bench_planning_step(benchmark, algo):
    """One real step's imagination: K = 25 rollouts of H = 3 (adaptive: up to 5, with the
    3-model disagreement), batched over K."""
    torch.manual_seed(0)
    cfg = ALGORITHMS[algo].default_config()
    model = DiscreteModel(ProbabilisticEnsemble(4, 2, cfg.model, CPU), 2, False)
    model.fit(random_transitions(0, 1000), torch.Generator().manual_seed(0))
    agent, gen = QAgent(4, 2, cfg.q, CPU), torch.Generator().manual_seed(0)
    starts = random_transitions(1, cfg.rollouts).obs
    threshold = 1.0 if cfg.horizon_mode == "adaptive" else None
    benchmark(imagine, model, agent, starts, cfg.horizon, 0.04, CARTPOLE.termination, gen,
              threshold)  # fmt: skip


@pytest.mark.benchmark(group="dyna-q")
def test_bench_q_update(benchmark):
    torch.manual_seed(0)
    agent, buf = QAgent(4, 2, QConfig(), CPU), random_transitions(0, 1000)
    gen = torch.Generator().manual_seed(0)
    benchmark(lambda: agent.update(buf.sample(64, gen)))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("algo", STUDY)
def test_cartpole_agents_learn_within_the_study_budget(tmp_path, run_cli, algo, seed):
    """Full study budget (5,000 real transitions): every agent's evaluation mean (50
    greedy episodes) reaches 195 at some evaluation. A random policy scores ~20 and a
    broken learner stays below 50. This checks learning, not the recipe's claim (the
    final-return comparison needs the pipeline's 20 seeds: the spread between seeds is
    large). Measured (2026-11-22, seeds 0-2): best evaluation means dqn 500 / 497 / 215,
    dyna_q 500 / 209 / 500, dyna_q_adaptive 399 / 220 / 422."""
    out = tmp_path / f"{algo}{seed}"
    run_cli("train", "--algo", algo, "--env", "cartpole", "--seed", str(seed), "--profile",
            "paper", "--threads", "1", "--out", str(out))  # fmt: skip
    curve: dict[int, list[float]] = {}
    for r in csv.DictReader(io.StringIO((out / "eval.csv").read_text())):
        curve.setdefault(int(r["step"]), []).append(float(r["return"]))
    means = {step: float(np.mean(v)) for step, v in sorted(curve.items())}
    print(f"\n{algo} seed {seed}: {means}")
    assert max(means) == 5000 and max(means.values()) >= 195.0, means
