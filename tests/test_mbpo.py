"""MBPO pieces: the rollout-horizon schedule, the real-ratio batch, model buffer sizing,
branched rollouts that stop at terminations."""

import pytest
import torch

from algorithms.mbpo import (
    MBPOConfig,
    _mixed_batch,
    branched_rollout,
    mixed_batch_sizes,
    model_buffer_capacity,
    ramp_allows,
    rollout_horizon,
)
from algorithms.parts.buffer import ReplayBuffer


@pytest.mark.parametrize(
    "schedule, epoch, horizon",
    [
        ((20, 150, 1, 15), 0, 1),
        ((20, 150, 1, 15), 20, 1),
        ((20, 150, 1, 15), 85, 8),  # 1 + 65/130 * 14 = 8.0
        ((20, 150, 1, 15), 100, 9),  # 1 + 80/130 * 14 = 9.6 -> 9 (truncated, as jannerm/mbpo)
        ((20, 150, 1, 15), 150, 15),
        ((20, 150, 1, 15), 400, 15),
        ((20, 100, 1, 25), 60, 13),  # ant: 1 + 40/80 * 24
        ((20, 300, 1, 25), 160, 13),  # humanoid: 1 + 140/280 * 24
        ((20, 150, 1, 1), 140, 1),
        ((1, 15, 1, 1), 10, 1),
    ],
)
def test_rollout_horizon_schedule(schedule, epoch, horizon):
    assert rollout_horizon(epoch, schedule) == horizon


def test_bad_schedule_rejected():
    with pytest.raises(ValueError, match="rollout_schedule"):
        MBPOConfig(rollout_schedule=(150, 20, 1, 15))


def test_real_ratio_batch_composition():
    assert mixed_batch_sizes(256, 0.05) == (12, 244)
    assert mixed_batch_sizes(256, 1.0) == (256, 0)
    real = ReplayBuffer(100, 3, 1, torch.device("cpu"))
    model = ReplayBuffer(100, 3, 1, torch.device("cpu"))
    ones = torch.ones(50, 3)
    real.add_batch(ones, torch.zeros(50, 1), torch.ones(50), ones, torch.zeros(50))
    model.add_batch(-ones, torch.zeros(50, 1), -torch.ones(50), -ones, torch.zeros(50))
    (obs, act, rew, next_obs, done), idx = _mixed_batch(real, model, 12, 244, torch.Generator())
    assert obs.shape == (256, 3) and rew.shape == (256,)
    assert int((rew > 0).sum()) == 12 and int((rew < 0).sum()) == 244
    assert idx.shape == (12,) and int(idx.max()) < 50  # the real part's rows, for the weighting


def test_model_buffer_capacity_matches_mbpo_sizing():
    cfg = MBPOConfig()  # hopper: 1000-step epochs, model every 250, 100k starts, retain 1
    assert model_buffer_capacity(cfg, 15) == 4 * 100_000 * 15
    cfg = MBPOConfig(model_train_freq=1000, retain_epochs=5)  # humanoid
    assert model_buffer_capacity(cfg, 25) == 5 * 100_000 * 25


class _ShiftModel:
    """A 'model' that adds 1 to every state dimension and returns reward 1."""

    def sample_step(self, obs, act, gen, deterministic=False):
        return obs + 1.0, torch.ones(obs.shape[0])


class _ZeroActor:
    def sample(self, obs, gen):
        return torch.zeros(obs.shape[0], 1), torch.zeros(obs.shape[0])


class _Agent:
    actor = _ZeroActor()


class _Spec:
    @staticmethod
    def termination(next_obs):
        return next_obs[:, 0] >= 3.0  # terminate once the first coordinate reaches 3


def test_branched_rollout_stops_terminated_branches():
    starts = torch.tensor([[0.0], [1.0], [2.0], [-10.0]])
    buf = ReplayBuffer(100, 1, 1, torch.device("cpu"))
    added, terminated = branched_rollout(
        _ShiftModel(), _Agent(), starts, 5, _Spec(), buf, torch.Generator()
    )
    # start 2 terminates after 1 step, start 1 after 2, start 0 after 3; start -10 runs 5
    assert added == 1 + 2 + 3 + 5 and terminated == 3
    done = buf.done[: len(buf)]
    assert int(done.sum()) == 3
    torch.testing.assert_close(buf.next_obs[: len(buf)], buf.obs[: len(buf)] + 1)


def test_update_ramp_gives_mbpo_pytorch_rates():
    """mbpo_pytorch's cap (max_train_repeat_per_step 5, 20 repeats, per-epoch counter) makes
    5, 10, 15 and then 20 updates per step in the first four 1000-step epochs; ramp 0 is
    jannerm/mbpo's 20 from the first step."""
    for ramp, rates in ((5.0, [5, 10, 15, 20, 20]), (0.0, [20] * 5)):
        per_epoch = []
        for epoch in range(5):
            n = 0
            for since in range(epoch * 1000, (epoch + 1) * 1000):
                if ramp_allows(n, since, ramp):
                    n += 20
            per_epoch.append(n / 1000)
        assert per_epoch == pytest.approx(rates, rel=0.01), (ramp, per_epoch)


def test_update_ramp_rejects_negative():
    with pytest.raises(ValueError, match="update_ramp"):
        MBPOConfig(update_ramp=-1.0)
