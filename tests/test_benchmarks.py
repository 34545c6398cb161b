"""Speed of the hot paths (pytest-benchmark; `make bench`, not in `make test`).

The plain-PyTorch SAC update is the reference the performance bar names (3-layer 256-unit
MLPs, two separate critics, torch.distributions, batch 256): ours must beat it on the same
machine in the same session. Numbers go to results/baselines/bench/ (`make bench-save`),
not asserted.

The hot paths: SAC update and end-to-end env steps/s (here), the ensemble train step and
the 100k-sample model step (tests/test_ensemble.py), the 100k-start branched rollout, the
PMAC sampler and every weighting scheme's sampler and per-step priority refresh (here),
the CEM plan step (tests/test_pets.py). `make bench` compares
every case with the stored baseline in results/baselines/bench/ (docs/regression.md
"Speed baseline").
"""

import time

import pytest
import torch
from torch import nn

from algorithms import mbpo
from algorithms.parts.buffer import ReplayBuffer
from algorithms.parts.ensemble import EnsembleConfig, ProbabilisticEnsemble
from algorithms.parts.envs import resolve_env
from algorithms.parts.seeding import seed_everything
from algorithms.pmac import transition_weights
from algorithms.sac import SACAgent, SACConfig
from algorithms.weighting import Replayed, WeightingConfig, make_weighting

OBS, ACT, B = 11, 3, 256  # Hopper


def _batch():
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(B, OBS, generator=g),
        torch.rand(B, ACT, generator=g) * 2 - 1,
        torch.randn(B, generator=g),
        torch.randn(B, OBS, generator=g),
        torch.zeros(B),
    )


@pytest.mark.benchmark(group="sac-update")
def test_bench_sac_update(benchmark):
    torch.manual_seed(0)
    agent = SACAgent(OBS, ACT, [-1.0] * ACT, [1.0] * ACT, SACConfig(), torch.device("cpu"))
    batch, gen = _batch(), torch.Generator().manual_seed(0)
    benchmark(agent.update, *batch, generator=gen)


@pytest.fixture(params=["flushed", "kept"])
def subnormal_mode(request):
    torch.set_flush_denormal(request.param == "flushed")
    yield request.param
    torch.set_flush_denormal(False)


@pytest.mark.benchmark(group="sac-update-subnormal-moments")
def test_bench_sac_update_with_subnormal_adam_moments(benchmark, subnormal_mode):
    """The SAC update as MBPO meets it after warm-up: every 5th Adam first moment subnormal,
    as dead units' moments decay (~22% after 6k Hopper steps), with subnormals flushed as
    training processes do (harness/job/process.py) or kept as torch's default does."""
    torch.manual_seed(0)
    agent = SACAgent(OBS, ACT, [-1.0] * ACT, [1.0] * ACT, SACConfig(), torch.device("cpu"))
    batch, gen = _batch(), torch.Generator().manual_seed(0)
    agent.update(*batch, generator=gen)  # creates the moments
    moments = [
        st["exp_avg"] for opt in (agent.actor_opt, agent.critic_opt) for st in opt.state.values()
    ]

    def decayed():
        for m in moments:
            m.view(-1)[::5] = 1e-39

    benchmark.pedantic(agent.update, args=batch, kwargs={"generator": gen}, setup=decayed,
                       rounds=200, warmup_rounds=20)  # fmt: skip


class _PlainSAC:
    """Textbook PyTorch SAC (pranz24 style): the reference the performance bar quotes."""

    def __init__(self):
        def mlp(i, o):
            return nn.Sequential(
                nn.Linear(i, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, o)
            )

        self.actor, self.q1, self.q2 = mlp(OBS, 2 * ACT), mlp(OBS + ACT, 1), mlp(OBS + ACT, 1)
        self.q1t, self.q2t = mlp(OBS + ACT, 1), mlp(OBS + ACT, 1)
        self.log_alpha = torch.zeros(1, requires_grad=True)
        self.opt_a = torch.optim.Adam(self.actor.parameters(), 3e-4)
        self.opt_q = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], 3e-4)
        self.opt_t = torch.optim.Adam([self.log_alpha], 3e-4)

    def sample(self, obs):
        mean, log_std = self.actor(obs).chunk(2, -1)
        normal = torch.distributions.Normal(mean, log_std.clamp(-20, 2).exp())
        u = normal.rsample()
        a = torch.tanh(u)
        return a, normal.log_prob(u).sum(-1) - torch.log(1 - a.pow(2) + 1e-6).sum(-1)

    def update(self, o, a, r, no, d):
        with torch.no_grad():
            na, nlp = self.sample(no)
            x = torch.cat([no, na], -1)
            qt = torch.min(self.q1t(x), self.q2t(x)).squeeze(-1)
            y = r + 0.99 * (1 - d) * (qt - self.log_alpha.exp() * nlp)
        x = torch.cat([o, a], -1)
        lq = ((self.q1(x).squeeze(-1) - y) ** 2).mean() + ((self.q2(x).squeeze(-1) - y) ** 2).mean()
        self.opt_q.zero_grad()
        lq.backward()
        self.opt_q.step()
        pa, lp = self.sample(o)
        x = torch.cat([o, pa], -1)
        q = torch.min(self.q1(x), self.q2(x)).squeeze(-1)
        la = (self.log_alpha.exp().detach() * lp - q).mean()
        self.opt_a.zero_grad()
        la.backward()
        self.opt_a.step()
        lt = -(self.log_alpha * (lp.detach() - ACT)).mean()
        self.opt_t.zero_grad()
        lt.backward()
        self.opt_t.step()
        with torch.no_grad():
            for p, pt in zip(
                [*self.q1.parameters(), *self.q2.parameters()],
                [*self.q1t.parameters(), *self.q2t.parameters()],
                strict=True,
            ):
                pt.mul_(0.995).add_(0.005 * p)


@pytest.mark.benchmark(group="sac-update")
def test_bench_plain_pytorch_sac_update_reference(benchmark):
    torch.manual_seed(0)
    ref = _PlainSAC()
    benchmark(ref.update, *_batch())


@pytest.mark.benchmark(group="rollout")
def test_bench_branched_rollout_100k_starts(benchmark):
    """One model period's rollouts at Hopper sizes: 100,000 start states, horizon 1 (MBPO's
    first epochs), policy sample + elite model step + termination + model-buffer insert."""
    gens = seed_everything(0)
    spec = resolve_env("hopper")
    model = ProbabilisticEnsemble(OBS, ACT, EnsembleConfig(), "cpu")
    agent = SACAgent(OBS, ACT, [-1.0] * ACT, [1.0] * ACT, SACConfig(), torch.device("cpu"))
    buf = ReplayBuffer(100_000, OBS, ACT, torch.device("cpu"))  # a ring: later rounds overwrite
    start = torch.randn(100_000, OBS, generator=gens.torch) * 0.1  # [N, D], mostly healthy
    start[:, 0] += 1.25  # Hopper height, so most branches survive the termination check

    def rollout():
        return mbpo.branched_rollout(model, agent, start, 1, spec, buf, gens.torch)

    added, _ = benchmark.pedantic(rollout, rounds=3, warmup_rounds=1)  # seconds per round
    assert added == 100_000 and len(buf) == 100_000


@pytest.mark.benchmark(group="pmac-sampler")
def test_bench_pmac_sampler_100k(benchmark):
    """PMAC's mixture over a full 100k-transition real buffer (400 segments of 250 steps
    after a 5,000-step warm-up) and 100,000 rollout starts drawn from it."""
    segments = torch.cat([torch.zeros(5_000, dtype=torch.long),
                          1 + torch.arange(95_000) // 250])  # fmt: skip
    gen = torch.Generator().manual_seed(0)

    def sample():
        probs = transition_weights(segments, 0.9)  # [N]
        return torch.multinomial(probs, 100_000, replacement=True, generator=gen)

    idx = benchmark.pedantic(sample, rounds=20, warmup_rounds=2)
    assert idx.shape == (100_000,) and int(idx.max()) < 100_000


def _hopper_buffer_100k():
    """A full 100k-transition real buffer at Hopper sizes: the 5,000-step warm-up, then 380
    segments of 250 steps (what PMAC's and PDML's weights run over at 100k steps)."""
    g = torch.Generator().manual_seed(0)
    buf = ReplayBuffer(100_000, OBS, ACT, torch.device("cpu"))
    buf.add_batch(torch.randn(100_000, OBS, generator=g), torch.rand(100_000, ACT, generator=g),
                  torch.randn(100_000, generator=g), torch.randn(100_000, OBS, generator=g),
                  torch.zeros(100_000))  # fmt: skip
    buf.segment[:] = torch.cat([torch.zeros(5_000, dtype=torch.long),
                                1 + torch.arange(95_000) // 250])  # fmt: skip
    return buf, g


def _scheme_with_state(name, g):
    """The scheme at 100k transitions with a state of the right shape (stored Gaussians,
    priorities, Q values)."""
    w = make_weighting(WeightingConfig(scheme=name), 100_000, ACT, 5_000, 125_000, "cpu")
    if name == "policy_distance":
        w.dist[5_000:] = torch.randn(95_000, 2, ACT, generator=g) * 0.3
    if name in ("per", "maper"):
        w.priority[:] = torch.rand(100_000, generator=g) * 10
    if name == "recall":
        w.q[:] = torch.randn(100_000, generator=g) * 100
    return w


SCHEMES = ["uniform", "age", "policy_distance", "per", "maper", "recall"]


@pytest.mark.benchmark(group="weighting-sampler")
@pytest.mark.parametrize("name", SCHEMES)
def test_bench_weighting_sampling_100k(benchmark, one_thread, name):
    """One model period's weighting at 100k transitions: the scheme's weights (PDML: the
    current actor on 2,048 states and the TV bounds of 379 segments) and 100,000 rollout
    starts drawn from them. The bar: under 10% of an MBPO env step (~300-400 ms at 1 thread
    here, test_bench_mbpo_hopper_env_steps_per_second), though it runs once per 250 steps."""
    torch.manual_seed(0)
    buf, g = _hopper_buffer_100k()
    agent = SACAgent(OBS, ACT, [-1.0] * ACT, [1.0] * ACT, SACConfig(), torch.device("cpu"))
    scheme, gen = _scheme_with_state(name, g), torch.Generator().manual_seed(0)

    def sample():
        probs = scheme.weights(buf, agent, 50_000).probs
        if probs is None:
            return buf.sample_indices(100_000, gen)
        return torch.multinomial(probs, 100_000, replacement=True, generator=gen)

    idx = benchmark.pedantic(sample, rounds=10, warmup_rounds=1)
    assert idx.shape == (100_000,) and int(idx.max()) < 100_000


@pytest.mark.benchmark(group="weighting-replay")
@pytest.mark.parametrize("name", ["per", "maper", "recall"])
def test_bench_weighting_priority_refresh_per_env_step(benchmark, one_thread, name):
    """What a prioritised scheme adds to every env step: refreshing the priorities (Q
    values) of the 20 x 12 real transitions of its 20 SAC updates (MaPER: plus one ensemble
    forward over them for the model error)."""
    torch.manual_seed(0)
    buf, g = _hopper_buffer_100k()
    scheme = _scheme_with_state(name, g)
    model = ProbabilisticEnsemble(OBS, ACT, EnsembleConfig(), "cpu")
    batches = [
        Replayed(torch.randint(100_000, (12,), generator=g), torch.randn(2, 12, generator=g),
                 torch.randn(12, generator=g))
        for _ in range(20)
    ]  # fmt: skip
    benchmark.pedantic(scheme.replayed, args=(batches, buf, model), rounds=50, warmup_rounds=2)


class _Clock:
    """Recorder that notes when learning starts, to time env steps after warm-up."""

    def __init__(self, warmup):
        self.warmup, self.t_start, self.t_end, self.steps = warmup, None, None, 0

    def eval(self, *a):
        pass

    def train(self, row):
        pass

    def log(self, msg):
        pass

    def table(self, name, rows):
        pass

    def progress(self, step, total, last):
        if step == self.warmup:
            self.t_start = time.perf_counter()
        self.t_end, self.steps = time.perf_counter(), step - self.warmup


@pytest.mark.benchmark(group="end-to-end")
def test_bench_mbpo_hopper_env_steps_per_second(benchmark):
    """MBPO at Hopper's paper hyperparameters (20 updates/step, 100k rollout starts, 7-member
    ensemble trained to early stopping) for 1,000 env steps after the 5,000-step warm-up:
    four model trainings + rollouts and 20,000 SAC updates."""
    spec = resolve_env("hopper")
    cfg = mbpo.MBPOConfig(total_steps=6000, eval_every=10**9, sac=SACConfig(target_entropy=-1))
    clock = _Clock(cfg.warmup_steps)

    def run():
        gens = seed_everything(0)
        mbpo.train(cfg, spec, gens, torch.device("cpu"), clock)

    benchmark.pedantic(run, rounds=1, iterations=1)
    rate = clock.steps / (clock.t_end - clock.t_start)
    benchmark.extra_info["env_steps_per_s_after_warmup"] = rate
    print(f"\nMBPO hopper: {rate:.2f} env steps/s after warm-up")


@pytest.mark.benchmark(group="pets-action")
def test_bench_pets_action_halfcheetah(benchmark):
    """One planned PETS action at the paper settings on HalfCheetah (CEM 500 x 5 rounds,
    horizon 30, 20 particles, TS-inf over 5 members of 4x200): 150 batched forwards of
    [5, 2000, 24] through the ensemble, ~400 GFLOP. Users of handful-of-trials report 3-4 s
    per action on CartPole (GPU-less)."""
    from algorithms.parts.envs import make_env
    from algorithms.pets import Actions, PETSConfig, _fresh_state, plan_action

    torch.manual_seed(0)
    spec = resolve_env("halfcheetah")
    env = make_env(spec, 0)
    st = _fresh_state(PETSConfig(), spec, Actions.of(env, spec), torch.device("cpu"))
    obs, _ = env.reset()
    gen = torch.Generator().manual_seed(0)
    plan_action(st, st.planner, obs, gen)  # warm-up (allocator, oneDNN kernels)
    benchmark.pedantic(plan_action, args=(st, st.planner, obs, gen), rounds=3, iterations=1)
    benchmark.extra_info["threads"] = torch.get_num_threads()
