"""Hot paths side by side with mbrl-lib 0.2.0 (docs/results.md "Speed against mbrl-lib").

One thread, one process: ours and mbrl-lib's alternate in paired rounds, so a shared
machine's noise hits both alike; the medians and the median of the paired ratios print.
mbrl-lib's pins (hydra-core 1.0.3, gymnasium 0.26) clash with ours; the paths timed here
need neither, so install it beside the venv without dependencies:

    .venv/bin/pip install --target /tmp/mbrl --no-deps mbrl==0.2.0 omegaconf==2.3.0 \
        hydra-core==1.3.2 antlr4-python3-runtime==4.9.3 termcolor tqdm imageio
    PYTHONPATH=/tmp/mbrl .venv/bin/python scripts/vs_mbrllib.py

MBPO end to end cannot alternate in one process: `mbpo ours` and `mbpo mbrllib` run one
library each; start the two together, one per core:

    export PYTHONPATH=$PWD:/tmp/mbrl OMP_NUM_THREADS=1
    taskset -c 0 .venv/bin/python scripts/vs_mbrllib.py mbpo ours &
    taskset -c 1 .venv/bin/python scripts/vs_mbrllib.py mbpo mbrllib

Both contenders run in a process set up as our training jobs are (harness/job/process.py:
subnormals flushed, freed memory kept), so the figures compare code, not process settings.
"""

import sys
import tempfile
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
from harness.job.process import tune_for_training

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


# Hopper MBPO end to end: env steps/s over the 750 steps from just before the 2nd model fit
# after warm-up to just before the 5th (fits 2-4, their rollouts and 15,000 SAC updates).
FIT, FIRST, LAST = 250, 2, 5


class _Window:
    """Time stamps per env step and (step, seconds, epochs) per model fit and per rollout;
    `report` sums them over the window between the steps that trigger fits FIRST and LAST."""

    def __init__(self) -> None:
        self.stamps: dict[int, float] = {}
        self.fits: list[tuple[int, float, int]] = []
        self.rollouts: list[tuple[int, float]] = []

    def report(self, name: str, first_fit_step: int) -> None:
        a, b = (first_fit_step + (k - 1) * FIT for k in (FIRST, LAST))
        wall = self.stamps[b] - self.stamps[a]
        fits = [(sec, ep) for i, sec, ep in self.fits if a <= i < b]
        fit_s, roll_s = sum(f[0] for f in fits), sum(r for i, r in self.rollouts if a <= i < b)
        print(f"MBPO hopper {name}: {(b - a) / wall:.2f} env steps/s over fits {FIRST}-{LAST}: "
              f"{wall:.0f} s = model fits {fit_s:.0f} s ({[f[1] for f in fits]} epochs) + "
              f"rollouts {roll_s:.1f} s + SAC updates, env and the rest "
              f"{wall - fit_s - roll_s:.0f} s")  # fmt: skip


def _ours(w: _Window) -> None:
    from algorithms import mbpo
    from algorithms.parts.envs import resolve_env
    from algorithms.sac import SACConfig

    class Clock:  # the loop's Recorder: progress(t) comes after step t's updates
        def progress(self, step, total, last):
            w.stamps[step] = time.perf_counter()

        def train(self, row):  # a fit's row: at the step t after the one stamped t - 1
            if "model_epochs" in row:
                w.fits.append((row["step"] - 1, row["model_train_wall_s"], row["model_epochs"]))
                w.rollouts.append((row["step"] - 1, row["rollout_wall_s"]))

        def eval(self, *a): ...
        def log(self, msg): ...
        def table(self, name, rows): ...

    cfg = mbpo.MBPOConfig(
        total_steps=5000 + (LAST - 1) * FIT, eval_every=10**9, sac=SACConfig(target_entropy=-1)
    )
    mbpo.train(cfg, resolve_env("hopper"), seed_everything(0), CPU, Clock())
    w.report("ours", 5000 - 1)  # progress(4999) precedes step 5000, which triggers fit 1


class _WindowDone(Exception):
    pass


def _theirs(w: _Window) -> None:
    import mbrl.util.common
    import omegaconf
    from mbrl.algorithms import mbpo
    from mbrl.env.termination_fns import hopper

    # Their 5,000 warm-up steps come first; then loop step 249 triggers fit 1 (there is no fit
    # at the warm-up's end).
    first = 5000 + FIT - 1
    env, test_env = gym.make("Hopper-v5"), gym.make("Hopper-v5")
    env.reset(seed=0)
    step, train = env.step, mbrl.models.ModelTrainer.train
    fit = mbrl.util.common.train_model_and_save_model_and_data
    rollout = mbpo.rollout_model_and_populate_sac_buffer

    def timed_step(action):  # the stamp of step i is len(stamps) when it is called
        if len(w.stamps) > first + (LAST - 1) * FIT:
            raise _WindowDone
        w.stamps[len(w.stamps)] = time.perf_counter()
        return step(action)

    epochs: list[int] = []

    def counted_train(self, *a, **k):  # returns (train losses, val scores), one per epoch
        out = train(self, *a, **k)
        epochs.append(len(out[0]))
        return out

    def timed(f, into):
        def g(*a, **k):
            start = time.perf_counter()
            out = f(*a, **k)
            into(len(w.stamps) - 1, time.perf_counter() - start)
            return out

        return g

    mbrl.models.ModelTrainer.train = counted_train
    mbrl.util.common.train_model_and_save_model_and_data = timed(
        fit, lambda i, sec: w.fits.append((i, sec, epochs[-1]))
    )
    mbpo.rollout_model_and_populate_sac_buffer = timed(
        rollout, lambda i, sec: w.rollouts.append((i, sec))
    )
    mbpo.evaluate = lambda *a, **k: -np.inf  # no episode, no "best" checkpoint
    env.step = timed_step

    conf = "/".join((mbpo.__file__.rsplit("/", 2)[0], "examples", "conf"))
    load = omegaconf.OmegaConf.load
    cfg = omegaconf.OmegaConf.create({
        "seed": 0, "device": "cpu", "log_frequency_agent": 10**9, "debug_mode": False,
        "algorithm": load(f"{conf}/algorithm/mbpo.yaml"),
        "dynamics_model": load(f"{conf}/dynamics_model/gaussian_mlp_ensemble.yaml"),
        "overrides": load(f"{conf}/overrides/mbpo_hopper.yaml"),
    })  # fmt: skip
    cfg.algorithm.random_initial_explore = True
    cfg.algorithm.dataset_size = 10**6  # else num_steps: a ring buffer dropping the warm-up
    cfg.dynamics_model._recursive_ = False  # as hydra 1.0 (their pin): SiLU made inside
    cfg.algorithm.agent.action_space.update(  # Hopper's box; Box takes no ListConfig
        {"_target_": "gymnasium.spaces.Box", "low": -1.0, "high": 1.0, "shape": [3]}
    )
    cfg.overrides.update({
        "num_steps": LAST * FIT, "num_sac_updates_per_step": 20, "sac_hidden_size": 256,
        "sac_automatic_entropy_tuning": True, "sac_target_entropy": -1,
        "sac_target_update_interval": 1, "model_wd": 0.0, "rollout_schedule": [20, 100, 1, 1],
    })  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        try:
            mbpo.train(env, test_env, hopper, cfg, silent=True, work_dir=work)
        except _WindowDone:
            pass
    w.report("mbrl-lib", first)


def mbpo(which: str) -> None:
    """One contender per process: run the two at once, one per core (`taskset -c 0 ...
    mbpo ours & taskset -c 1 ... mbpo mbrllib`). Settings as jannerm's Hopper where both
    allow: 5,000 uniform warm-up steps, a fit and 100k one-step rollouts every 250 steps,
    7 members (5 elites) of 4x200 SiLU, patience 5 (each library's own early-stopping
    rule), 20 SAC updates per step of 2x256 with a tuned temperature (target entropy -1),
    batch 256, model data only. Evaluation is off in both."""
    {"ours": _ours, "mbrllib": _theirs}[which](_Window())


if __name__ == "__main__":
    tune_for_training(1)
    seed_everything(0)
    if sys.argv[1:2] == ["mbpo"]:
        mbpo(sys.argv[2])
    else:
        sac()
        ensemble()
        pets()
