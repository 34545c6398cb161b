"""The weighting family (algorithms.weighting): each scheme's weights on a tiny buffer against
hand-computed values, the sampler's draws against the weights, and PER's importance
weights reaching the model's loss."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats

from algorithms import mbpo
from algorithms.parts.buffer import ReplayBuffer
from algorithms.parts.ensemble import EnsembleConfig, ProbabilisticEnsemble
from algorithms.parts.envs import resolve_env
from algorithms.parts.fit import fit_ensemble
from algorithms.pdml import PolicyDistanceConfig, gaussian_tv_bound, segment_weights, spread
from algorithms.pmac import segment_of_step, transition_weights
from algorithms.priorities import (
    annealed_beta,
    importance_weights,
    last_occurrence,
    per_config,
    sampling_probabilities,
    top_fraction_probabilities,
)
from algorithms.sac import SACAgent, SACConfig
from algorithms.weighting import Replayed, WeightingConfig, make_weighting

CPU = torch.device("cpu")
WARM, SEG, N_SEG = 4, 2, 4  # tiny buffer: 4 warm-up rows, then 4 policy segments of 2
N = WARM + SEG * N_SEG


def tiny_buffer(obs_dim=2, act_dim=1, warm=WARM, seg=SEG, n=N) -> ReplayBuffer:
    """Row i holds obs [i, 0, ...], reward i / 10 and its policy segment."""
    buf = ReplayBuffer(n, obs_dim, act_dim, CPU)
    for i in range(n):
        obs = np.zeros(obs_dim, np.float32)
        obs[0] = i
        buf.add(obs, np.zeros(act_dim), i / 10, obs + 0.5, False, segment_of_step(i, warm, seg))
    return buf


def scheme(name, capacity=N, act_dim=1, **cfg):
    return make_weighting(WeightingConfig(scheme=name, **cfg), capacity, act_dim, 4, 12, CPU)


# --- policy distance (PDML) -------------------------------------------------------------


def test_tv_bound_of_known_gaussians():
    """Pinsker: TV <= sqrt(KL(p || q) / 2). KL(N(0,1) || N(1,1)) = 1/2 -> 0.5;
    KL(N(0,1) || N(0,2^2)) = (ln 4 + 1/4 - 1) / 2 -> sqrt(0.1590736) = 0.3988403; a 2-d
    Gaussian with both pairs as dimensions adds the KLs -> sqrt(0.4090736) = 0.6395886."""
    z = torch.zeros(1, 1)
    assert gaussian_tv_bound(z, z, z + 1, z).item() == pytest.approx(0.5, abs=1e-7)
    assert gaussian_tv_bound(z, z, z, z + math.log(2)).item() == pytest.approx(0.3988403, 1e-6)
    two = gaussian_tv_bound(
        torch.zeros(1, 2),
        torch.zeros(1, 2),
        torch.tensor([[1.0, 0.0]]),
        torch.tensor([[0.0, math.log(2)]]),
    )
    assert two.item() == pytest.approx(0.6395886, rel=1e-6)  # fmt: skip
    # a bound: the exact TV of N(0,1) and N(1,1) is 2 Phi(1/2) - 1 = 0.3829
    assert 2 * stats.norm.cdf(0.5) - 1 < gaussian_tv_bound(z, z, z + 1, z).item()


def test_tv_bound_std_mode_is_the_releases_formula():
    """covariance="std": si0wang/PDML sac/tvd.py's matrix formula with exp(log_std) as the
    covariance diagonal, 0.5 sqrt(log det S2/det S1 - n + tr(S2^-1 S1) + d^T S2^-1 d),
    computed here the release's way (dense matrices) on random inputs."""
    g = torch.Generator().manual_seed(0)
    m1, m2 = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    l1, l2 = torch.randn(6, 3, generator=g) * 0.5, torch.randn(6, 3, generator=g) * 0.5
    s1, s2 = torch.diag_embed(l1.exp()).double(), torch.diag_embed(l2.exp()).double()
    inv2 = s2.inverse()
    d = (m2 - m1).double().unsqueeze(-1)
    term = (s2.det() / s1.det()).log() - 3 + (inv2 @ s1).diagonal(dim1=-2, dim2=-1).sum(-1)
    release = 0.5 * torch.sqrt(term + (d.transpose(1, 2) @ inv2 @ d).flatten())
    ours = gaussian_tv_bound(m1, l1, m2, l2, "std")
    np.testing.assert_allclose(ours.numpy(), release.numpy(), rtol=1e-5)
    assert not torch.allclose(gaussian_tv_bound(m1, l1, m2, l2), ours)  # the modes differ


def test_pdml_segment_weights_warmup_and_newest_rules():
    """TV [0.5, 0.25, 1] -> 1/TV normalised [2/7, 4/7, 1/7]; warm-up 0.05 x the oldest =
    1/70; newest max(0.02/0.98 x (1/70 + 1) = 71/3430, the largest 4/7) = 4/7; with
    max_rate 0.5 the share rule wins: 71/70."""
    tv = torch.tensor([0.5, 0.25, 1.0])
    w = segment_weights(tv, 0.02, 0.05)
    np.testing.assert_allclose(w.numpy(), [1 / 70, 2 / 7, 4 / 7, 1 / 7, 4 / 7], rtol=1e-12)
    w = segment_weights(tv, 0.5, 0.05)
    np.testing.assert_allclose(w.numpy(), [1 / 70, 2 / 7, 4 / 7, 1 / 7, 71 / 70], rtol=1e-12)


def test_spread_picks_stratum_midpoints():
    picks = spread(torch.tensor([250, 250, 3]), torch.tensor([0, 250, 500]), 15)
    assert picks.tolist() == [[25, 75, 125, 175, 225], [275, 325, 375, 425, 475],
                              [500, 500, 501, 502, 502]]  # fmt: skip
    assert spread(torch.tensor([10, 10]), torch.tensor([0, 10]), 1).tolist() == [[5], [15]]


def _current_policy_standard_normal():
    """An agent stub whose current policy is N(0, 1) at every state (1-d actions)."""
    dist = lambda obs: (torch.zeros(len(obs), 1), torch.zeros(len(obs), 1))  # noqa: E731
    return SimpleNamespace(actor=SimpleNamespace(dist_params=dist))


def test_pdml_transition_weights_on_a_tiny_buffer():
    """Segments 1-3 acted with means 1, 0.5, 2 (std 1) against the current N(0, 1): TV
    bounds 0.5, 0.25, 1 (KL 1/2, 1/8, 2) -> per-transition weights warm-up 1/70, then 2/7,
    4/7, 1/7 and the newest 4/7; total 4/70 + 2 x 22/7 = 3.2, so each warm-up row has
    probability 1/224, segment 1's rows 20/224, segment 2's 40/224, segment 3's 10/224,
    the newest's 40/224."""
    buf, s, agent = tiny_buffer(), scheme("policy_distance"), _current_policy_standard_normal()
    for row, mean in zip(range(WARM, N), [1, 1, 0.5, 0.5, 2, 2, 9, 9], strict=True):
        s.dist[row] = torch.tensor([[mean], [0.0]])
    probs, factors, summary = s.weights(buf, agent, 12)
    expected = np.array([1] * 4 + [20] * 2 + [40] * 2 + [10] * 2 + [40] * 2) / 224
    np.testing.assert_allclose(probs.numpy(), expected, rtol=1e-6)
    assert factors is None
    assert summary["pdml_segments"] == 5
    assert summary["pdml_weight_newest"] == pytest.approx(80 / 224, rel=1e-6)
    assert summary["pdml_weight_warmup"] == pytest.approx(4 / 224, rel=1e-6)
    assert summary["pdml_tv_mean"] == pytest.approx((0.5 + 0.25 + 1) / 3, rel=1e-6)


def test_pdml_is_uniform_until_four_policy_segments():
    """si0wang/PDML: TV weights from len(env_pool) >= 6000 (= 4 segments after warm-up)."""
    buf, agent = tiny_buffer(n=WARM + 3 * SEG), _current_policy_standard_normal()
    s = scheme("policy_distance", capacity=WARM + 3 * SEG)
    probs, _, summary = s.weights(buf, agent, 10)
    np.testing.assert_allclose(probs.numpy(), np.full(10, 0.1), rtol=1e-6)
    assert math.isnan(summary["pdml_tv_mean"])
    s2 = scheme("policy_distance", capacity=WARM + 3 * SEG,
                policy_distance=PolicyDistanceConfig(start_segments=3))  # fmt: skip
    assert not torch.allclose(s2.weights(buf, agent, 10).probs, probs)


def test_pdml_stores_the_acting_policys_gaussian_after_warmup():
    torch.manual_seed(0)
    agent = SACAgent(2, 1, [-1.0], [1.0], SACConfig(hidden=8), CPU)
    s = scheme("policy_distance")
    obs = np.array([0.3, -0.2], np.float32)
    s.stored(0, obs, None, 0, agent)  # warm-up: uniform random actions, nothing stored
    s.stored(5, obs, None, 1, agent)
    mean, log_std = agent.actor.dist_params(torch.as_tensor(obs).unsqueeze(0))
    assert torch.equal(s.dist[0], torch.zeros(2, 1))
    assert torch.equal(s.dist[5], torch.cat([mean, log_std]).detach())


# --- PER, MaPER, RECALL -----------------------------------------------------------------


def test_per_probabilities_and_importance_weights():
    """Priorities [1, 4, 9, 16] at exponent 0.5 -> [1, 2, 3, 4] / 10; importance weights at
    b = 0.5: (N P)^-0.5 = (0.4, 0.8, 1.2, 1.6)^-0.5, over the largest -> [1, 1/sqrt 2,
    1/sqrt 3, 1/2]; b = 0 -> all 1."""
    probs = sampling_probabilities(torch.tensor([1.0, 4.0, 9.0, 16.0]), 0.5)
    np.testing.assert_allclose(probs.numpy(), [0.1, 0.2, 0.3, 0.4], rtol=1e-12)
    w = importance_weights(probs, 0.5)
    np.testing.assert_allclose(w.numpy(), [1, 2**-0.5, 3**-0.5, 0.5], rtol=1e-12)
    assert torch.equal(importance_weights(probs, 0.0), torch.ones(4, dtype=torch.float64))
    cfg = per_config()  # Schaul et al.: b from 0.4 at the first model training to 1 at the end
    assert [annealed_beta(t, cfg, 500, 1500) for t in (400, 500, 1000, 1500, 2000)] == [
        0.4, 0.4, pytest.approx(0.7), 1.0, 1.0
    ]  # fmt: skip


def test_per_refreshes_priorities_from_replays_and_new_rows_get_the_maximum():
    """Replays of rows [0, 2, 0] with twin Q [[1, 2, 5], [3, 2, 5]] and targets [0, 0, 1]:
    |TD errors| averaged over the twins 2, 2, 4; row 0's later replay wins (4), row 2 gets
    2, +1e-6 each; a row stored afterwards enters at the largest priority so far."""
    s, buf = scheme("per"), tiny_buffer()
    q, y = torch.tensor([[1.0, 2.0, 5.0], [3.0, 2.0, 5.0]]), torch.tensor([0.0, 0.0, 1.0])
    s.replayed([Replayed(torch.tensor([0, 2]), q[:, :2], y[:2]),
                Replayed(torch.tensor([0]), q[:, 2:], y[2:])], buf, None)  # fmt: skip
    assert s.priority[[0, 2, 1]].tolist() == pytest.approx([4 + 1e-6, 2 + 1e-6, 1.0])
    s.stored(7, None, None, 1, None)
    assert s.priority[7].item() == pytest.approx(4 + 1e-6)
    probs, factors, summary = s.weights(buf, None, 4)
    p = s.priority.double() ** 0.6
    np.testing.assert_allclose(probs.numpy(), (p / p.sum()).numpy(), rtol=1e-6)
    w = (N * p / p.sum()) ** -0.4  # b = 0.4 at the first model training (step 4)
    np.testing.assert_allclose(factors.numpy(), (w / w.max()).numpy(), rtol=1e-6)
    assert summary["per_beta"] == 0.4 and summary["per_priority_max"] == pytest.approx(4 + 1e-6)


def test_maper_priority_adds_the_models_squared_errors():
    """MaPER: mean over the twins of the squared TD error + (reward error)^2 + squared
    next-state error summed over dims. Row 3 (reward 0.3, next obs [3.5, 0.5]) with Q
    [1, 3], y 0 -> 5; a model predicting reward 1.3 and next obs [4.5, 2.5] adds 1 + 5."""
    s, buf = scheme("maper"), tiny_buffer()
    model = SimpleNamespace(predict_mean=lambda o, a: (o + torch.tensor([1.5, 2.5]),
                                                       o[:, 0] / 10 + 1.0))  # fmt: skip
    s.replayed([Replayed(torch.tensor([3]), torch.tensor([[1.0], [3.0]]), torch.zeros(1))],
               buf, model)  # fmt: skip
    assert s.priority[3].item() == pytest.approx(5 + 1 + 5 + 1e-9, rel=1e-6)
    probs, factors, summary = s.weights(buf, None, 8)
    # exponent 0.5, b = 1: P ~ [1, 1, 1, sqrt(11), 1, ...]; the weights P_min / P undo it
    assert probs[3].item() == pytest.approx(11**0.5 / (N - 1 + 11**0.5), rel=1e-6)
    expected = torch.ones(N)
    expected[3] = 11**-0.5
    torch.testing.assert_close(factors, expected)
    assert summary["maper_beta"] == 1.0


def test_recall_keeps_the_top_quarter_by_q():
    """Q [5, 1, 7, 3, 9, 2, 8, 4]: the top quarter is Q 9 and 8 (rows 4 and 6), 1/2 each;
    10 rows -> ceil(2.5) = 3 rows."""
    q = torch.tensor([5.0, 1, 7, 3, 9, 2, 8, 4])
    assert top_fraction_probabilities(q, 0.25).tolist() == [0, 0, 0, 0, 0.5, 0, 0.5, 0]
    ten = top_fraction_probabilities(torch.arange(10.0), 0.25)
    assert ten.tolist() == [0] * 7 + [pytest.approx(1 / 3)] * 3


def test_recall_values_rows_when_stored_and_refreshes_them_from_replays():
    torch.manual_seed(0)
    agent = SACAgent(2, 1, [-1.0], [1.0], SACConfig(hidden=8), CPU)
    s, buf = scheme("recall", capacity=8), tiny_buffer(n=8)
    obs, act = np.array([1.0, 2.0], np.float32), np.array([0.5], np.float32)
    s.stored(2, obs, act, 0, agent)
    expected = agent.q_values(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5]])).min(0).values
    assert s.q[2].item() == pytest.approx(expected.item())
    s.q[:] = torch.tensor([5.0, 1, 7, 3, 9, 2, 8, 4])
    s.replayed([Replayed(torch.tensor([1, 1]), torch.tensor([[20.0, 0.0], [30.0, -1.0]]),
                         torch.zeros(2))], buf, None)  # fmt: skip
    assert s.q[1].item() == -1.0  # the later replay, min over the twins
    s.replayed([Replayed(torch.tensor([1]), torch.tensor([[20.0], [30.0]]), torch.zeros(1))],
               buf, None)  # fmt: skip
    probs, _, summary = s.weights(buf, None, 8)
    assert probs.tolist() == [0, 0.5, 0, 0, 0.5, 0, 0, 0] and summary["recall_q_threshold"] == 9


def test_last_occurrence_of_repeated_rows():
    assert last_occurrence(torch.tensor([3, 1, 3, 2, 1, 3])).tolist() == [
        False, False, False, True, True, True
    ]  # fmt: skip


def test_age_scheme_is_pmacs_mixture():
    buf = tiny_buffer()
    probs, factors, summary = scheme("age").weights(buf, None, 12)
    assert torch.equal(probs, transition_weights(buf.segment[:N], 0.9)) and factors is None
    assert summary == {
        "pmac_segments": 5,
        "pmac_weight_newest": pytest.approx(0.1),
        "pmac_weight_warmup": pytest.approx(0.9**4),
    }
    assert scheme("uniform").weights(buf, None, 12) == (None, None, {})


# --- sampling: the rollout starts follow each scheme's weights ----------------------------


def _states(name):
    """A 40-row buffer (8 warm-up rows, 4 segments of 8), the scheme with a known state, a
    small agent and model, and the run config (rollout starts drawn 40,000 times)."""
    torch.manual_seed(0)
    spec = resolve_env("inverted_pendulum")
    cfg = mbpo.MBPOConfig(
        total_steps=40, warmup_steps=8, rollout_batch_size=40_000, rollout_schedule=(1, 2, 1, 1),
        model=EnsembleConfig(members=2, elites=1, hidden=8, layers=1, weight_decay=(0, 0),
                             max_epochs=1),
        weighting=WeightingConfig(scheme=name, adaptation_interval=8),
        sac=SACConfig(hidden=8),
    )  # fmt: skip
    buf = tiny_buffer(obs_dim=spec.obs_dim, warm=8, seg=8, n=40)
    agent = SACAgent(spec.obs_dim, 1, [-3.0], [3.0], cfg.sac, CPU)
    model = ProbabilisticEnsemble(spec.obs_dim, 1, cfg.model, CPU)
    s = make_weighting(cfg.weighting, 40, 1, 8, 40, CPU)
    g = torch.Generator().manual_seed(1)
    if name == "policy_distance":
        s.dist[8:] = torch.randn(32, 2, 1, generator=g) * 0.5
    if name in ("per", "maper"):
        s.priority[:] = torch.rand(40, generator=g) * 5 + 0.1
    if name == "recall":
        s.q[:] = torch.randn(40, generator=g)
    return spec, cfg, buf, agent, model, s


@pytest.mark.parametrize("name", ["uniform", "age", "policy_distance", "per", "recall", "maper"])
def test_rollout_starts_are_drawn_by_the_schemes_weights(name):
    """One model period (`_train_model_and_rollout`): the 40,000 rollout start states hit
    each buffer row as often as the scheme's probabilities say (chi-square p > 0.001), and
    rows of probability 0 never."""
    spec, cfg, buf, agent, model, s = _states(name)
    probs = s.weights(buf, agent, 40).probs
    expected = torch.full((40,), 1 / 40) if probs is None else probs.double()
    model_buf = ReplayBuffer(mbpo.model_buffer_capacity(cfg, 1), spec.obs_dim, 1, CPU)
    gen = torch.Generator().manual_seed(2)
    row = mbpo._train_model_and_rollout(cfg, spec, model, agent, buf, model_buf, s, gen, 40)
    assert row["rollout_added"] == 40_000
    rows = model_buf.obs[:40_000, 0].round().long()
    counts = torch.bincount(rows, minlength=40).double()
    assert (counts[expected == 0] == 0).all()
    live = expected > 0
    p = stats.chisquare(counts[live].numpy(), (expected[live] / expected[live].sum() * 40_000)
                        .numpy()).pvalue  # fmt: skip
    assert p > 1e-3, (name, counts, expected)
    if name != "uniform":  # the test has power: these weights are far from uniform
        assert stats.chisquare(counts.numpy()).pvalue < 1e-6


# --- importance weights in the model's loss ----------------------------------------------


def _fit(factors, weighting="resample"):
    torch.manual_seed(0)
    cfg = EnsembleConfig(members=2, elites=1, hidden=8, layers=1, weight_decay=(0, 0),
                         max_epochs=3)  # fmt: skip
    model = ProbabilisticEnsemble(2, 1, cfg, CPU)
    g = torch.Generator().manual_seed(0)
    obs, act = torch.randn(200, 2, generator=g), torch.randn(200, 1, generator=g)
    nxt, rew = obs + act, obs[:, 0]
    weights = torch.linspace(0.1, 1.0, 200)
    fit_ensemble(model, obs, act, nxt, rew, torch.Generator().manual_seed(3), weights, weighting,
                 factors)  # fmt: skip
    return torch.cat([p.detach().flatten() for p in model.mlp.parameters()])


def test_importance_weights_of_one_change_nothing_and_others_change_the_fit():
    plain = _fit(None)
    assert torch.equal(_fit(torch.ones(200)), plain)
    assert not torch.allclose(_fit(torch.linspace(1.0, 0.1, 200)), plain)
    assert not torch.allclose(_fit(torch.linspace(1.0, 0.1, 200), "loss"), _fit(None, "loss"))
    with pytest.raises(ValueError, match="loss_factors need weights"):
        fit_ensemble(ProbabilisticEnsemble(2, 1, EnsembleConfig(), CPU), torch.zeros(10, 2),
                     torch.zeros(10, 1), torch.zeros(10, 2), torch.zeros(10),
                     torch.Generator(), None, "resample", torch.ones(10))  # fmt: skip
