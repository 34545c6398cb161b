"""SAC: log-probabilities, action bounds, batched twin critics, and that updates learn."""

import math

import pytest
import torch

from algorithms.parts.nets import EnsembleLinear
from algorithms.sac import SACAgent, SACConfig

LOW, HIGH = [-3.0, -0.4], [3.0, 0.4]


def make_agent(seed=0, **kw):
    torch.manual_seed(seed)
    return SACAgent(5, 2, LOW, HIGH, SACConfig(**kw), torch.device("cpu"))


def test_actions_within_bounds_and_log_prob_matches_change_of_variables():
    agent = make_agent()
    obs = torch.randn(4096, 5)
    gen = torch.Generator().manual_seed(1)
    act, logp = agent.actor.sample(obs, gen)
    low, high = torch.tensor(LOW), torch.tensor(HIGH)
    assert ((act >= low) & (act <= high)).all()
    # Reference: Normal log-prob minus log|d(scale * tanh(u))/du| computed naively.
    mean, log_std = agent.actor.dist_params(obs)
    scale = (high - low) / 2
    u = torch.atanh(((act - (high + low) / 2) / scale).clamp(-1 + 1e-6, 1 - 1e-6))
    ref = torch.distributions.Normal(mean, log_std.exp()).log_prob(u).sum(-1)
    ref = ref - torch.log(scale * (1 - torch.tanh(u) ** 2)).sum(-1)
    ok = (act.abs() / scale).max(-1).values < 0.999  # away from float saturation
    torch.testing.assert_close(logp[ok], ref[ok], atol=2e-3, rtol=1e-4)


def test_twin_critics_batched_equal_separate_networks():
    agent = make_agent()
    obs, act = torch.randn(64, 5), torch.randn(64, 2)
    q = agent.q_values(obs, act)
    assert q.shape == (2, 64)
    x = torch.cat([obs, act], -1)
    for member in range(2):
        h = x
        layers = agent.critic.linear_layers()
        for i, layer in enumerate(layers):
            h = h @ layer.weight[member] + layer.bias[member]
            if i < len(layers) - 1:
                h = torch.relu(h)
        torch.testing.assert_close(q[member], h.squeeze(-1))
    assert not torch.allclose(q[0], q[1])  # independently initialised


def test_target_entropy_default_and_override():
    assert make_agent().target_entropy == -2.0
    assert make_agent(target_entropy=-0.05).target_entropy == -0.05


def test_critic_regresses_fixed_targets_and_targets_track_slowly():
    """On a fixed batch with gamma=0 the critics' loss must fall by 10x, and the target
    critics move by exactly tau per step (Polyak)."""
    agent = make_agent(gamma=0.0, tau=0.01)
    gen = torch.Generator().manual_seed(0)
    obs, act = torch.randn(256, 5), torch.rand(256, 2) * 2 - 1
    rew = obs[:, 0] - 0.5 * act[:, 1]
    next_obs, done = torch.randn(256, 5), torch.zeros(256)
    before_target = [p.clone() for p in agent.critic_target.parameters()]
    before = [p.clone() for p in agent.critic.parameters()]
    first = float(agent.update(obs, act, rew, next_obs, done, gen)[0]["critic_loss"])
    after = [p.clone() for p in agent.critic.parameters()]
    for t0, p0, p1, t1 in zip(
        before_target, before, after, agent.critic_target.parameters(), strict=True
    ):
        del p0
        torch.testing.assert_close(t1, t0 + 0.01 * (p1 - t0))
    for _ in range(400):
        last = float(agent.update(obs, act, rew, next_obs, done, gen)[0]["critic_loss"])
    assert last < first / 10, (first, last)


def test_temperature_moves_towards_target_entropy():
    """With a target entropy far above the policy's, alpha must grow; far below, shrink."""
    for target, grows in ((10.0, True), (-10.0, False)):
        agent = make_agent(target_entropy=target)
        gen = torch.Generator().manual_seed(0)
        batch = (
            torch.randn(256, 5),
            torch.rand(256, 2),
            torch.zeros(256),
            torch.randn(256, 5),
            torch.zeros(256),
        )
        for _ in range(50):
            agent.update(*batch, gen)
        alpha = math.exp(float(agent.log_alpha.detach()))
        assert (alpha > 1.0) == grows, (target, alpha)


def test_fixed_temperature_stays_and_autotune_moves_it():
    batch = (torch.randn(256, 5), torch.rand(256, 2), torch.zeros(256), torch.randn(256, 5),
             torch.zeros(256))  # fmt: skip
    for autotune in (False, True):
        agent = make_agent(autotune=autotune, alpha=0.2, target_entropy=10.0)
        gen = torch.Generator().manual_seed(0)
        for _ in range(20):
            out, _, _ = agent.update(*batch, gen)
        alpha = math.exp(float(agent.log_alpha.detach()))
        if autotune:
            assert alpha > 0.2 * 1.002, alpha  # 20 Adam steps of lr 3e-4 upwards: ~0.6%
        else:
            assert alpha == pytest.approx(0.2, rel=1e-6) == float(out["alpha"])


def test_reference_initialisations():
    """glorot: U(+-sqrt(6 / (in + out))), zero bias; truncated_normal: std 1 / (2 sqrt(in))
    cut at 2 std, zero bias (jannerm/mbpo)."""
    torch.manual_seed(0)
    for init in ("glorot", "truncated_normal"):
        layer = EnsembleLinear(7, 200, 300, init)
        w = layer.weight.detach()
        assert torch.count_nonzero(layer.bias) == 0
        if init == "glorot":
            bound = math.sqrt(6 / 500)
            assert w.abs().max() <= bound and w.std() == pytest.approx(
                bound / math.sqrt(3), rel=0.02
            )
        else:
            std = 1 / (2 * math.sqrt(200))
            # a normal cut at 2 std keeps 0.880 of its standard deviation
            assert w.abs().max() <= 2 * std and w.std() == pytest.approx(0.880 * std, rel=0.02)
    with pytest.raises(ValueError, match="init must be one of"):
        EnsembleLinear(1, 2, 3, "xavier")


def test_actor_first_steps_the_actor_against_the_critics_before_their_step():
    """sac.actor_first (mbpo_pytorch's order, ledger #28): the critics' step is the default's
    exactly, and the actor's step is the one the default order takes when the critics do
    not move (critic learning rate 0); with moving critics the two orders differ."""
    batch = (torch.randn(256, 5), torch.rand(256, 2), torch.randn(256), torch.randn(256, 5),
             torch.zeros(256))  # fmt: skip
    first, default, frozen = make_agent(actor_first=True), make_agent(), make_agent()
    for group in frozen.critic_opt.param_groups:
        group["lr"] = 0.0
    for agent in (first, default, frozen):
        agent.update(*batch, torch.Generator().manual_seed(0))

    def params(module):
        return torch.cat([p.detach().flatten() for p in module.parameters()])

    assert torch.equal(params(first.critic), params(default.critic))
    assert not torch.equal(params(first.critic), params(frozen.critic))  # the critics moved
    assert torch.equal(params(first.actor), params(frozen.actor))
    assert not torch.equal(params(first.actor), params(default.actor))
    assert torch.equal(first.log_alpha, default.log_alpha)  # same samples, same temperature
