"""Probabilistic dynamics ensemble of MBPO / PETS: the model (its fit is
`algorithms.parts.fit`).

Sources
- Janner et al. 2019, "When to Trust Your Model: Model-Based Policy Optimization" (MBPO), and its
  reference code jannerm/mbpo: `mbpo/models/bnn.py` (class `BNN`: Gaussian NLL, soft log-variance
  bounds, per-member best-state snapshots, elites) and `mbpo/models/fake_env.py` (the model
  step: one elite per sample, noise ~ N(0, var)).
- Chua et al. 2018, "Deep Reinforcement Learning in a Handful of Trials using Probabilistic
  Dynamics Models" (PETS): bootstrapped ensemble of Gaussian MLPs with learned logvar bounds.

The model maps normalised [obs, act] to a diagonal Gaussian over [reward, next_obs - obs] per
member. Members are evaluated together by `algorithms.parts.nets.EnsembleMLP` (one baddbmm
per layer). The Adam optimiser lives here, beside the weights it updates, so its state
persists across fits (jannerm's single TF optimiser); `fit` drives it.

Deviations from jannerm/mbpo (all deliberate; the fit's are listed in `algorithms.parts.fit`):
1. `sample_step` assigns elites to samples by a balanced random partition (exactly equal counts
   per elite, up to one) instead of MBPO's i.i.d. uniform draw, so each sample runs through its
   own member only (1/E of the compute). The per-sample marginal is still uniform over elites;
   at 100k rollout starts the difference from i.i.d. counts is negligible.
3. Weight init is torch's nn.Linear default, not jannerm's truncated normal with std
   1 / (2 sqrt(fan_in)) and zero biases (`init="truncated_normal"` selects it).
7. Optional `normalize_targets` (off by default; on for MBPO/PMAC on InvertedPendulum,
   docs/ambiguities.md #17) standardises the targets, so the log-variance bounds act in
   standardised units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from algorithms.parts.nets import INITS, EnsembleMLP, Init

# Rows per member per forward pass in the no-grad paths (rollouts, holdout MSE, predict_mean).
# Keeps each [members, rows, hidden] activation at a few MB (cache-resident, and the allocator
# reuses the same blocks instead of page-faulting fresh 80 MB ones): at Hopper sizes a
# 100k-state rollout step took ~160 ms with 1024-row chunks vs ~360 ms in one [5, 20000, .]
# pass (2 CPU threads; 2048-8192 rows measured 150-215 ms).
_CHUNK = 1024


@dataclass(frozen=True)
class EnsembleConfig:
    members: int = 7  # E: ensemble size (MBPO: 7)
    elites: int = 5  # members used for rollouts, lowest holdout MSE (MBPO: 5)
    hidden: int = 200  # width of every hidden layer
    layers: int = 4  # hidden layers, SiLU (swish) activations
    lr: float = 1e-3  # Adam learning rate
    # Per linear layer (layers + 1 entries), L2 on weights only, as in jannerm/mbpo.
    weight_decay: tuple[float, ...] = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)
    batch_size: int = 256  # minibatch rows per member
    holdout_ratio: float = 0.2  # fraction of transitions held out for early stopping / elites
    max_holdout: int = 5000  # jannerm/mbpo caps the holdout at 5000 samples
    patience: int = 5  # epochs without >threshold relative improvement of any member -> stop
    improvement_threshold: float = 0.01  # relative holdout-MSE improvement that counts (1%)
    max_epochs: int | None = None  # None = until early stop (MBPO); smoke profile sets a cap
    logvar_bound_penalty: float = 0.01  # coefficient on sum(max_logvar) - sum(min_logvar)
    # Standardise the targets [reward, next_obs - obs] by the training part's mean/std (not
    # in jannerm/mbpo or PETS, which fit raw targets; see `bound`). Off by default.
    normalize_targets: bool = False
    init: Init = "torch"  # weight init (algorithms.parts.nets); jannerm/mbpo: "truncated_normal"

    def __post_init__(self) -> None:
        # A list would make the frozen config unhashable; store a tuple whatever was passed.
        object.__setattr__(self, "weight_decay", tuple(float(w) for w in self.weight_decay))
        if self.members < 1:
            raise ValueError(f"members must be >= 1, got {self.members}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if not 1 <= self.elites <= self.members:
            raise ValueError(f"elites must be in [1, members={self.members}], got {self.elites}")
        if self.hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {self.hidden}")
        if self.layers < 1:
            raise ValueError(f"layers must be >= 1, got {self.layers}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if len(self.weight_decay) != self.layers + 1:
            raise ValueError(
                f"weight_decay needs layers + 1 = {self.layers + 1} entries (one per linear "
                f"layer), got {len(self.weight_decay)}: {self.weight_decay}"
            )
        if any(not w >= 0 for w in self.weight_decay):
            raise ValueError(f"weight_decay entries must be >= 0, got {self.weight_decay}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0 < self.holdout_ratio < 1:
            raise ValueError(f"holdout_ratio must be in (0, 1), got {self.holdout_ratio}")
        if self.max_holdout < 1:
            raise ValueError(f"max_holdout must be >= 1, got {self.max_holdout}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if not self.improvement_threshold >= 0:
            raise ValueError(
                f"improvement_threshold must be >= 0, got {self.improvement_threshold}"
            )
        if self.max_epochs is not None and self.max_epochs < 1:
            raise ValueError(f"max_epochs must be None or >= 1, got {self.max_epochs}")
        if not self.logvar_bound_penalty >= 0:
            raise ValueError(f"logvar_bound_penalty must be >= 0, got {self.logvar_bound_penalty}")


class ProbabilisticEnsemble(nn.Module):
    """E Gaussian MLPs over [reward, next_obs - obs] given normalised [obs, act].

    Buffers (move with `.to()`, saved in `state_dict`): `in_mean`, `in_std` [in] input
    normaliser; `elite_idx` [elites] elite members sorted by index; `holdout_mse` [E] each
    member's holdout MSE after the last fit (inf before training).
    """

    def __init__(
        self, obs_dim: int, act_dim: int, cfg: EnsembleConfig, device: torch.device | str
    ) -> None:
        super().__init__()
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"obs_dim and act_dim must be >= 1, got {obs_dim}, {act_dim}")
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        self.in_dim = obs_dim + act_dim
        self.out_dim = 1 + obs_dim  # [reward, delta obs]
        # One head emits [mean, raw logvar] so the whole ensemble is a single EnsembleMLP.
        self.mlp = EnsembleMLP(
            cfg.members,
            self.in_dim,
            2 * self.out_dim,
            [cfg.hidden] * cfg.layers,
            nn.SiLU,
            cfg.init,
        )
        # Shared across members, as in jannerm/mbpo (shape [1, out] there).
        self.max_logvar = nn.Parameter(torch.full((self.out_dim,), 0.5))  # [out]
        self.min_logvar = nn.Parameter(torch.full((self.out_dim,), -10.0))  # [out]
        self.register_buffer("in_mean", torch.zeros(self.in_dim))  # [in]
        self.register_buffer("in_std", torch.ones(self.in_dim))  # [in]
        # Target standardiser; the identity (0, 1) unless cfg.normalize_targets.
        self.register_buffer("out_mean", torch.zeros(self.out_dim))  # [out]
        self.register_buffer("out_std", torch.ones(self.out_dim))  # [out]
        self.register_buffer("elite_idx", torch.arange(cfg.elites))  # [elites]
        self.register_buffer("holdout_mse", torch.full((cfg.members,), math.inf))  # [E]
        self.to(device)
        # Diagnostics of the last fit (not saved): holdout rows (indices into
        # the N transitions passed) and the per-epoch per-member holdout MSE before restoring.
        self.last_holdout_idx: Tensor | None = None
        self.holdout_history: list[list[float]] = []

        linears = self.mlp.linear_layers()
        groups = [
            {"params": [lin.weight], "weight_decay": wd}
            for lin, wd in zip(linears, cfg.weight_decay, strict=True)
        ]
        groups.append(
            {
                "params": [lin.bias for lin in linears] + [self.max_logvar, self.min_logvar],
                "weight_decay": 0.0,
            }
        )
        # Created once and kept across fits, like jannerm's single TF optimiser.
        # fused=True: one kernel for all parameters (CPU and CUDA in torch >= 2.4).
        self.optim = torch.optim.Adam(groups, lr=cfg.lr, fused=True)

    @property
    def device(self) -> torch.device:
        """Where the model lives; follows `.to()` (read off a buffer, not stored)."""
        return self.in_mean.device

    # ------------------------------------------------------------------ network
    def bound(self, out: Tensor) -> tuple[Tensor, Tensor]:
        """Split the head output [..., 2*out] into mean and softly bounded logvar [..., out],
        in raw target units.

        With `normalize_targets` the head predicts standardised targets and the soft bounds
        act in standardised units; the affine map to raw units leaves the NLL's gradient
        unchanged (it only adds the constant 2 log out_std), so every consumer (rollouts,
        PETS, Dyna-Q, the holdout MSE) sees raw units either way. Off, the map is the exact
        identity (x * 1 + 0), so results are bit-for-bit those without the option."""
        mean, raw = out.split(self.out_dim, dim=-1)
        # Soft clamps (PETS / jannerm): differentiable, and the bounds themselves are learned.
        logvar = self.max_logvar - F.softplus(self.max_logvar - raw)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        if self.cfg.normalize_targets:
            return mean * self.out_std + self.out_mean, logvar + 2.0 * self.out_std.log()
        return mean, logvar

    def forward(self, x_norm: Tensor) -> tuple[Tensor, Tensor]:
        """All members: normalised inputs [E, B, in] -> mean, logvar [E, B, out]."""
        return self.bound(self.mlp(x_norm))

    def _member_params(self, members: Tensor) -> dict[str, Tensor]:
        """The MLP's parameters restricted to `members` [M]: every tensor [E, ...] -> [M, ...]
        (a copy of a few MB at most, made once per call, not per chunk)."""
        return {n: p.index_select(0, members) for n, p in self.mlp.named_parameters()}

    def _forward_params(self, x_norm: Tensor, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The same EnsembleMLP on a gathered parameter set: x_norm [M, B, in] -> mean, logvar
        [M, B, out]; the cost scales with M rather than E."""
        return self.bound(torch.func.functional_call(self.mlp, params, (x_norm,)))

    def _forward_members(self, x_norm: Tensor, members: Tensor) -> tuple[Tensor, Tensor]:
        """A subset of members: x_norm [M, B, in], members [M] -> mean, logvar [M, B, out]."""
        return self._forward_params(x_norm, self._member_params(members))

    # --------------------------------------------------------------- normaliser
    @torch.no_grad()
    def fit_normaliser(self, inputs: Tensor, targets: Tensor | None = None) -> None:
        """Fit per-dimension mean/std on raw inputs [N, in] (population std, as numpy), and
        on raw targets [N, out] when given (`normalize_targets`)."""
        for data, mean_buf, std_buf in (
            (inputs, self.in_mean, self.in_std),
            (targets, self.out_mean, self.out_std),
        ):
            if data is None:
                continue
            std = data.std(0, correction=0)
            # jannerm's scaler: a (near-)constant column keeps unit scale, not division by ~0.
            std_buf.copy_(torch.where(std < 1e-12, torch.ones_like(std), std))
            mean_buf.copy_(data.mean(0))

    def normalise(self, inputs: Tensor) -> Tensor:
        """Raw [..., in] -> normalised [..., in]."""
        return (inputs - self.in_mean) / self.in_std

    def denormalise(self, x_norm: Tensor) -> Tensor:
        """Inverse of `normalise`: [..., in] -> [..., in]."""
        return x_norm * self.in_std + self.in_mean

    def inputs(self, obs: Tensor, act: Tensor) -> Tensor:
        return torch.cat([obs, act], dim=-1).to(self.device, torch.float32)  # [B, in]

    def targets(self, obs: Tensor, next_obs: Tensor, reward: Tensor) -> Tensor:
        rew = reward.reshape(-1, 1)  # accepts [N] or [N, 1]
        return torch.cat([rew, next_obs - obs], dim=-1).to(self.device, torch.float32)  # [N, out]

    # ---------------------------------------------------------------- evaluation
    @torch.no_grad()
    def member_mse(self, x_norm: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
        """Per-member MSE of the mean: x_norm [B, in], target [B, out], weight [B] summing to 1
        or None (uniform) -> [E]."""
        E, n = self.cfg.members, x_norm.shape[0]
        total = torch.zeros(E, device=self.device)  # [E]
        for s in range(0, n, _CHUNK):
            x = x_norm[s : s + _CHUNK]  # [b, in]
            mean, _ = self(x.unsqueeze(0).expand(E, -1, -1))  # [E, b, out]
            err = (mean - target[s : s + _CHUNK]).square_().mean(-1)  # [E, b]
            if weight is None:
                total += err.sum(1) / n
            else:
                total += err @ weight[s : s + _CHUNK]
        return total

    def evaluate_mse(
        self,
        obs: Tensor,
        act: Tensor,
        next_obs: Tensor,
        reward: Tensor,
        weights: Tensor | None = None,
    ) -> Tensor:
        """Per-member MSE [E] of the predicted mean of [reward, next_obs - obs] on the given
        transitions ([N, D] each, reward [N]), optionally weighted by `weights` [N] >= 0."""
        w = None
        if weights is not None:
            w = weights.to(self.device, torch.float32).reshape(-1)
            w = w / w.sum()
        x = self.normalise(self.inputs(obs, act))
        return self.member_mse(x, self.targets(obs, next_obs, reward), w)

    @torch.no_grad()
    def select_elites(self, holdout_mse: Tensor) -> None:
        """Store per-member holdout MSE [E] and make the `elites` lowest the elites (jannerm's
        argsort; NaN sorts last), kept sorted by member index."""
        self.holdout_mse.copy_(holdout_mse)
        best = torch.argsort(holdout_mse)[: self.cfg.elites]
        self.elite_idx.copy_(torch.sort(best).values)

    def check_generator(self, generator: torch.Generator) -> None:
        if generator.device.type != self.device.type:
            raise ValueError(
                f"generator is on {generator.device}, model on {self.device}; "
                "pass a generator created on the model's device"
            )

    # ---------------------------------------------------------------- inference
    def elite_assignment(self, batch: int, generator: torch.Generator) -> Tensor:
        """Member index per sample [batch] that `sample_step` uses when given a generator in
        the same state (it consumes the generator identically first)."""
        perm = torch.randperm(batch, generator=generator, device=self.device)  # [B]
        n = self.elite_idx.shape[0]
        slot = torch.arange(batch, device=self.device) % n  # [B] position p -> elite p % n
        members = torch.empty_like(perm)  # [B]
        members[perm] = self.elite_idx[slot]
        return members

    @torch.no_grad()
    def sample_step(
        self, obs: Tensor, act: Tensor, generator: torch.Generator, deterministic: bool = False
    ) -> tuple[Tensor, Tensor]:
        """MBPO's stochastic model step: obs [B, D], act [B, A] -> next_obs [B, D], reward [B].

        Each sample is predicted by one elite, with noise ~ N(0, exp(logvar)) from `generator`.
        Elites are assigned by a random balanced partition: the samples are permuted and
        dealt round-robin to the elites (counts differ by at most one), padded to
        [n_elites, ceil(B / n_elites)] and run in one batched forward through the elite weights
        only. MBPO draws the elite of each sample i.i.d.; both are uniform per sample, and the
        count difference is negligible at 100k rollout starts (see module docstring)."""
        self.check_generator(generator)
        B, n = obs.shape[0], self.elite_idx.shape[0]
        chunk = -(-B // n)  # ceil
        padded = chunk * n
        perm = torch.randperm(B, generator=generator, device=self.device)  # [B]
        if padded > B:
            # Pad with row 0 (any valid row); padded outputs are dropped below.
            perm_p = torch.cat([perm, perm.new_zeros(padded - B)])  # [P]
        else:
            perm_p = perm
        # Position p goes to elite p % n: row k of the grid holds elite k's samples.
        grid = perm_p.view(chunk, n).T  # [n, chunk]
        x_all = self.normalise(self.inputs(obs, act))  # [B, in]
        params = self._member_params(self.elite_idx)
        sample = torch.empty(n, chunk, self.out_dim, device=self.device)  # [n, chunk, out]
        for s in range(0, chunk, _CHUNK):
            x = x_all[grid[:, s : s + _CHUNK]]  # [n, c, in]
            mean, logvar = self._forward_params(x, params)  # [n, c, out]
            if deterministic:  # the member's mean (jannerm/mbpo `deterministic=True`)
                sample[:, s : s + _CHUNK] = mean
                continue
            noise = torch.randn(mean.shape, generator=generator, device=self.device)  # [n, c, out]
            sample[:, s : s + _CHUNK] = noise.mul_(logvar.mul_(0.5).exp_()).add_(mean)
        flat = sample.transpose(0, 1).reshape(padded, self.out_dim)[:B]  # [B, out], perm order
        out = torch.empty_like(flat).index_copy_(0, perm, flat)  # [B, out], original order
        return obs + out[:, 1:], out[:, 0]

    @torch.no_grad()
    def member_step(
        self,
        obs: Tensor,
        act: Tensor,
        member: Tensor,
        generator: torch.Generator,
        deterministic: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The model step for small batches with the member of each row given: obs [B, D],
        act [B, A], member [B] -> next_obs [B, D], reward [B] sampled from row i's member
        (its mean if `deterministic`), and every member's mean [E, B, out] (Dyna-Q's
        disagreement). All E members run on every row: for the 100k-row rollouts use
        `sample_step`, which runs each row through its own elite only."""
        x = self.normalise(self.inputs(obs, act)).expand(self.cfg.members, -1, -1)  # [E, B, in]
        mean, logvar = self(x)  # [E, B, out]
        rows = torch.arange(obs.shape[0], device=obs.device)
        mu, lv = mean[member, rows], logvar[member, rows]  # [B, out]
        if not deterministic:
            noise = torch.randn(mu.shape, generator=generator, device=obs.device)
            mu = mu + noise * (0.5 * lv).exp()
        return obs + mu[:, 1:], mu[:, 0], mean

    @torch.no_grad()
    def predict_mean(self, obs: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        """Mean over elites of the members' means: obs [B, D], act [B, A] -> next_obs [B, D],
        reward [B] (diagnostics, e.g. one-step error)."""
        x_norm = self.normalise(self.inputs(obs, act))  # [B, in]
        n = self.elite_idx.shape[0]
        params = self._member_params(self.elite_idx)
        parts = []
        for s in range(0, x_norm.shape[0], _CHUNK):
            x = x_norm[s : s + _CHUNK].unsqueeze(0).expand(n, -1, -1)  # [n, b, in]
            mean, _ = self._forward_params(x, params)  # [n, b, out]
            parts.append(mean.mean(0))  # [b, out]
        out = torch.cat(parts) if parts else x_norm.new_zeros(0, self.out_dim)  # [B, out]
        return obs + out[:, 1:], out[:, 0]
