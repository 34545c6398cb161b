"""Model diagnostics on models whose answer is known: the true simulator (zero error), a
constant per-step bias (compounding error linear in h), an optimistic reward model
(positive co-adaptation gap)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from algorithms.parts import diagnostics as diag
from algorithms.parts.loop import Episode, evaluate

CPU = torch.device("cpu")


class SimulatorModel:
    """InvertedPendulum-v5's own simulator as the 'model': its observation is the full
    state (qpos, qvel), so a state can be set from an observation exactly."""

    def __init__(self):
        self.env = gym.make("InvertedPendulum-v5").unwrapped
        self.env.reset(seed=0)

    def _step(self, obs, act):
        nxt, rew = [], []
        for o, a in zip(obs.double().numpy(), act.double().numpy(), strict=True):
            self.env.set_state(o[:2], o[2:])
            n, r, *_ = self.env.step(a)
            nxt.append(n)
            rew.append(r)
        return torch.tensor(np.array(nxt), dtype=torch.float32), torch.tensor(rew)

    def predict_mean(self, obs, act):
        return self._step(obs, act)

    def sample_step(self, obs, act, generator):
        return self._step(obs, act)


def _pendulum_episodes():
    env = gym.make("InvertedPendulum-v5")
    env.reset(seed=3)
    rng = np.random.default_rng(0)

    def policy(o):  # a crude balancing controller with noise: episodes of varied length
        return np.clip(3 * (5 * o[1:2] + o[3:4]) + rng.normal(0, 0.5, 1), -3, 3)

    return evaluate(policy, env, episodes=3)


def test_true_simulator_has_zero_one_step_and_compounding_error():
    episodes = _pendulum_episodes()
    model = SimulatorModel()
    obs, act, nxt, rew = diag.transitions(episodes)
    assert obs.shape[0] == rew.shape[0] == sum(len(e) for e in episodes) > 50
    errors = diag.one_step_errors(model, obs, act, nxt, rew, CPU)
    assert errors["state"] < 1e-10 and errors["reward"] < 1e-10, errors
    segs = diag.pick_segments(episodes, 10, 20, np.random.default_rng(0))
    for sampling in ("sample", "mean"):
        errors = diag.compounding_error(model, segs, sampling, torch.Generator(), CPU)
        assert [h for h, _ in errors] == list(range(1, 21))
        assert max(e for _, e in errors) < 1e-4, errors  # float32 observations only


class Shift:
    """Toy system s' = s + a with reward -|s'|_1; the model adds `bias` per step and
    `reward_bonus` to every predicted reward."""

    def __init__(self, bias, reward_bonus=0.0):
        self.bias, self.bonus = torch.as_tensor(bias, dtype=torch.float32), reward_bonus

    def predict_mean(self, obs, act):
        nxt = obs + act + self.bias
        return nxt, -nxt.abs().sum(-1) + self.bonus

    def sample_step(self, obs, act, generator):
        return self.predict_mean(obs, act)


def _shift_episode(start, actions):
    obs = [np.asarray(start, np.float32)]
    for a in actions:
        obs.append(obs[-1] + a)
    obs = np.array(obs, np.float32)
    rew = -np.abs(obs[1:]).sum(-1)
    return Episode(obs, np.asarray(actions, np.float32), rew.astype(np.float64), False)


def test_constant_bias_gives_linear_compounding_error():
    rng = np.random.default_rng(1)
    episodes = [_shift_episode(rng.normal(size=3), rng.normal(size=(40, 3))) for _ in range(4)]
    bias = np.array([0.1, -0.2, 0.05])
    segs = diag.pick_segments(episodes, 10, 20, np.random.default_rng(0))
    errors = diag.compounding_error(Shift(bias), segs, "sample", torch.Generator(), CPU)
    expected = [h * np.linalg.norm(bias) for h in range(1, len(errors) + 1)]
    np.testing.assert_allclose([e for _, e in errors], expected, rtol=1e-4)
    assert Shift(np.zeros(3)).predict_mean(torch.zeros(1, 3), torch.ones(1, 3))[0].sum() == 3


def test_optimistic_model_shows_positive_coadaptation_gap():
    """The policy replays the real actions (open loop via a lookup), so the model and the
    real trajectory coincide except for the model's +0.5 reward per step."""
    rng = np.random.default_rng(2)
    actions = rng.normal(size=(30, 2)).astype(np.float32)
    episodes = [_shift_episode(np.zeros(2), actions)]
    segs = [diag.Segment(episodes[0].obs[:11], actions[:10], episodes[0].rew[:10])]
    step = iter(range(10))

    def policy(state):
        return torch.as_tensor(actions[next(step)]).expand(state.shape[0], -1)

    rows = diag.coadaptation(Shift(np.zeros(2), 0.5), policy, segs, None, "mean", None, CPU)
    gaps = [m - r for _, m, r in rows]
    np.testing.assert_allclose(gaps, [0.5 * h for h in range(1, 11)], rtol=1e-5)
    np.testing.assert_allclose([r for *_, r in rows], np.cumsum(episodes[0].rew[:10]))


def test_model_branch_stops_earning_after_predicted_termination():
    segs = [diag.Segment(np.zeros((6, 1), np.float32), np.ones((5, 1), np.float32), np.ones(5))]

    def policy(state):
        return torch.ones_like(state)

    rows = diag.coadaptation(
        Shift([0.0], 10.0), policy, segs, lambda s: s[:, 0] >= 2.0, "mean", None, CPU
    )
    model_returns = [m for _, m, _ in rows]
    # rewards 10-1=9 then 10-2=8 (terminates at s=2), nothing after
    assert model_returns == pytest.approx([9.0, 17.0, 17.0, 17.0, 17.0])


def test_segments_stay_inside_their_episode():
    episodes = [_shift_episode(np.zeros(1), np.ones((n, 1))) for n in (3, 50, 7)]
    segs = diag.pick_segments(episodes, 200, 20, np.random.default_rng(0))
    assert len(segs) == 200
    for s in segs:
        assert 1 <= len(s.act) <= 20 and len(s.obs) == len(s.act) + 1
        # consecutive states of one episode: each step adds exactly the action (1)
        np.testing.assert_allclose(np.diff(s.obs[:, 0]), 1.0)
    lengths = {len(s.act) for s in segs}
    assert 20 in lengths and min(lengths) < 20  # both full and end-truncated segments


def test_bad_diagnostics_config_rejected():
    with pytest.raises(ValueError, match="horizon"):
        diag.DiagnosticsConfig(horizon=0)
    with pytest.raises(ValueError, match="sampling"):
        diag.DiagnosticsConfig(sampling="exact")


def test_reward_error_is_reported_apart_from_the_state_error():
    """A model with exact dynamics and a reward off by 0.5: state error 0, reward 0.25."""
    rng = np.random.default_rng(3)
    episodes = [_shift_episode(np.zeros(2), rng.normal(size=(20, 2)))]
    obs, act, nxt, rew = diag.transitions(episodes)
    errors = diag.one_step_errors(Shift(np.zeros(2), 0.5), obs, act, nxt, rew, CPU)
    assert errors["state"] < 1e-12 and errors["reward"] == pytest.approx(0.25, rel=1e-5)
    rows = diag.model_rows(5, errors, {"state": 1.0, "reward": 2.0}, [], [])["model"]
    assert [(r["split"], r["target"], r["error"]) for r in rows] == [
        ("local", "state", errors["state"]),
        ("local", "reward", errors["reward"]),
        ("global", "state", 1.0),
        ("global", "reward", 2.0),
    ]


def test_complete_returns_and_critic_row():
    """Discounted returns by hand; a time-limit cut keeps only the steps whose missing tail
    weighs < 1% (gamma 0.5: log(0.01) / log(0.5) = 6.6 -> the last 7 steps go)."""
    done = Episode(np.zeros((4, 1)), np.zeros((3, 1)), np.array([1.0, 2.0, 4.0]), True)
    cut = Episode(np.zeros((11, 1)), np.zeros((10, 1)), np.ones(10), False)
    obs, act, ret = diag.complete_returns([done, cut], gamma=0.5)
    # terminated: G2 = 4, G1 = 2 + 2 = 4, G0 = 1 + 2 = 3; cut: 10 - 7 = 3 steps kept
    assert obs.shape == (6, 1) and act.shape == (6, 1)
    np.testing.assert_allclose(ret[:3], [3.0, 4.0, 4.0])
    np.testing.assert_allclose(ret[3:], [2 - 0.5**9, 2 - 0.5**8, 2 - 0.5**7])
    row = diag.critic_row(7, torch.full((6,), 10.0), ret, alpha=0.2, entropy=-1.0, gamma=0.5)
    assert row["states"] == 6 and row["q_mean"] == pytest.approx(10.0)
    assert row["q_bias"] == pytest.approx(10.0 - ret.mean())
    assert row["entropy_bonus"] == pytest.approx(0.2 * -1.0 * 0.5 / 0.5)
