"""Hot paths side by side with mbrl-lib 0.2.0 (docs/results.md "Speed against mbrl-lib").

One thread, one process: ours and mbrl-lib's alternate in paired rounds, so a shared
machine's noise hits both alike; the medians and the median of the paired ratios print.
mbrl-lib's pins (hydra-core 1.0.3, gymnasium 0.26) clash with ours; the paths timed here
need neither, so install it beside the venv without dependencies:

    .venv/bin/pip install --target /tmp/mbrl --no-deps mbrl==0.2.0 omegaconf==2.3.0 \
        hydra-core==1.3.2 antlr4-python3-runtime==4.9.3 termcolor tqdm imageio
    PYTHONPATH=/tmp/mbrl .venv/bin/python scripts/vs_mbrllib.py
"""

import time
import types

import gymnasium as gym
import mbrl.models
import numpy as np
import torch
from mbrl.third_party.pytorch_sac_pranz24.sac import SAC

from algorithms.parts.ensemble import EnsembleConfig, ProbabilisticEnsemble
from algorithms.parts.fit import train_step
from algorithms.parts.seeding import seed_everything
from algorithms.sac import SACAgent, SACConfig

OBS, ACT, B = 11, 3, 256  # Hopper
CPU = torch.device("cpu")


def paired(name: str, ours, theirs, rounds: int = 8, calls: int = 100, warm: int = 20) -> None:
    def timed(f, n):
        start = time.perf_counter()
        for _ in range(n):
            f()
        return (time.perf_counter() - start) / n * 1e3

    timed(ours, warm), timed(theirs, warm)  # allocator, Adam state, oneDNN kernels
    a, b = zip(*[(timed(ours, calls), timed(theirs, calls)) for _ in range(rounds)], strict=True)
    ratio = np.median(np.array(b) / np.array(a))
    print(f"{name}: ours {np.median(a):.2f} ms, mbrl-lib {np.median(b):.2f} ms, ratio {ratio:.2f}")


def sac() -> None:
    """SACAgent.update vs pranz24's update_parameters (batch 256, 2x256, tuned temperature);
    their batch comes as numpy arrays, as from their replay buffer."""
    rng = np.random.default_rng(0)
    obs, nxt = rng.standard_normal((2, B, OBS), dtype=np.float32)
    act = rng.uniform(-1, 1, (B, ACT)).astype(np.float32)
    rew, done = rng.standard_normal(B, dtype=np.float32), np.zeros(B, dtype=bool)
    batch = types.SimpleNamespace(astuple=lambda: (obs, act, nxt, rew, done, done))
    memory = types.SimpleNamespace(sample=lambda n: batch)
    args = types.SimpleNamespace(
        gamma=0.99, tau=0.005, alpha=0.2, policy="Gaussian", target_update_interval=1,
        automatic_entropy_tuning=True, hidden_size=256, lr=3e-4, device=torch.device("cpu"),
        target_entropy=-1,
    )  # fmt: skip
    theirs = SAC(OBS, gym.spaces.Box(-1.0, 1.0, (ACT,), np.float32), args)
    ours = SACAgent(OBS, ACT, [-1.0] * ACT, [1.0] * ACT, SACConfig(target_entropy=-1), CPU)
    gen = torch.Generator().manual_seed(0)
    tensors = [torch.from_numpy(x) for x in (obs, act, rew, nxt)] + [torch.zeros(B)]
    step = iter(range(1, 10**9))
    paired(
        "SAC update",
        lambda: ours.update(*tensors, gen),
        lambda: theirs.update_parameters(memory, B, next(step), reverse_mask=True),
    )


def ensemble() -> None:
    """fit.train_step vs GaussianMLP loss + Adam (7 x 4x200 SiLU, 256 per member), each
    with the bootstrap gather of its minibatch."""
    n_in, n_out = OBS + ACT, 1 + OBS
    ours = ProbabilisticEnsemble(OBS, ACT, EnsembleConfig(), CPU)
    theirs = mbrl.models.GaussianMLP(
        n_in, n_out, "cpu", num_layers=4, ensemble_size=7, hid_size=200,
        learn_logvar_bounds=False, activation_fn_cfg={"_target_": "torch.nn.SiLU"},
    )  # fmt: skip
    optim = torch.optim.Adam(theirs.parameters(), lr=1e-3, weight_decay=5e-5)
    data, idx = torch.randn(100_000, n_in + n_out), torch.randint(100_000, (7, B))

    def ours_step():
        b = data[idx]
        train_step(ours, b[..., :n_in], b[..., n_in:])

    def theirs_step():
        b = data[idx]
        optim.zero_grad()
        loss, _ = theirs.loss(b[..., :n_in], b[..., n_in:])
        loss.backward()
        optim.step()

    paired("ensemble train step", ours_step, theirs_step)


def pets() -> None:
    """One planned action on HalfCheetah-v5 at PETS's settings, ours (`plan_action`) vs
    mbrl-lib's TrajectoryOptimizer + CEM over ModelEnv: CEM 500 x 5 rounds with 50 elites
    and smoothing 0.1, horizon 30, 20 particles, TS-inf ("fixed_model") over 5 members of
    4x200 SiLU, learned reward, no termination; untrained models (the cost is the same)."""
    import omegaconf
    from mbrl.env.termination_fns import no_termination
    from mbrl.models import ModelEnv, OneDTransitionRewardModel
    from mbrl.planning.trajectory_opt import TrajectoryOptimizer

    from algorithms.parts.envs import make_env, resolve_env
    from algorithms.pets import Actions, PETSConfig, _fresh_state, plan_action

    spec = resolve_env("halfcheetah")
    env = make_env(spec, 0)
    obs, _ = env.reset(seed=0)
    st = _fresh_state(PETSConfig(), spec, Actions.of(env, spec), CPU)
    gen = torch.Generator().manual_seed(0)
    obs_dim, act_dim = spec.obs_dim, spec.act_dim
    mlp = mbrl.models.GaussianMLP(
        obs_dim + act_dim, obs_dim + 1, "cpu", num_layers=4, ensemble_size=5, hid_size=200,
        propagation_method="fixed_model", learn_logvar_bounds=False,
        activation_fn_cfg={"_target_": "torch.nn.SiLU"},
    )  # fmt: skip
    model = OneDTransitionRewardModel(mlp, target_is_delta=True, normalize=True)
    model_env = ModelEnv(env, model, no_termination, generator=torch.Generator().manual_seed(0))
    cem = omegaconf.OmegaConf.create({
        "_target_": "mbrl.planning.CEMOptimizer", "num_iterations": 5, "elite_ratio": 0.1,
        "population_size": 500, "alpha": 0.1, "device": "cpu", "lower_bound": "???",
        "upper_bound": "???", "return_mean_elites": True, "clipped_normal": False,
    })  # fmt: skip
    low, high = env.action_space.low, env.action_space.high
    optimizer = TrajectoryOptimizer(cem, low, high, planning_horizon=30)

    def theirs():
        optimizer.optimize(
            lambda seqs: model_env.evaluate_action_sequences(seqs, obs, num_particles=20)
        )

    paired("PETS planned action", lambda: plan_action(st, st.planner, obs, gen), theirs,
           rounds=3, calls=1, warm=1)  # fmt: skip


if __name__ == "__main__":
    torch.set_num_threads(1)
    seed_everything(0)
    sac()
    ensemble()
    pets()
