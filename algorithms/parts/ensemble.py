"""Probabilistic dynamics ensemble of MBPO / PETS.

Sources
- Janner et al. 2019, "When to Trust Your Model: Model-Based Policy Optimization" (MBPO), and its
  reference code jannerm/mbpo: `mbpo/models/bnn.py` (class `BNN`: Gaussian NLL, soft log-variance
  bounds, holdout split, per-member best-state snapshots, elites) and `mbpo/models/fake_env.py`
  (the model step: one elite per sample, noise ~ N(0, var)).
- Chua et al. 2018, "Deep Reinforcement Learning in a Handful of Trials using Probabilistic
  Dynamics Models" (PETS): bootstrapped ensemble of Gaussian MLPs with learned logvar bounds.

The model maps normalised [obs, act] to a diagonal Gaussian over [reward, next_obs - obs] per
member. Members are evaluated together by `algorithms.nets.EnsembleMLP` (one baddbmm per layer).

Deviations from jannerm/mbpo (all deliberate):
1. `sample_step` assigns elites to samples by a balanced random partition (exactly equal counts
   per elite, up to one) instead of MBPO's i.i.d. uniform draw, so each sample runs through its
   own member only (1/E of the compute). The per-sample marginal is still uniform over elites;
   at 100k rollout starts the difference from i.i.d. counts is negligible.
2. Weight decay is applied by Adam's coupled (L2) `weight_decay`, one parameter group per layer:
   torch's Adam adds `decay * w` to the gradient before the moment updates, which is exactly the
   gradient of jannerm's `decay * tf.nn.l2_loss(w) = decay * sum(w^2) / 2` in the loss, so the
   optimisation is the same without the extra autograd work. The term is still added to the
   reported `model_loss`.
3. Weight init is `nets.EnsembleLinear`'s (torch nn.Linear default), not jannerm's truncated
   normal with std 1 / (2 sqrt(fan_in)).
4. Early stopping halts after `patience` consecutive epochs without a >1% relative improvement of
   any member; jannerm halts when `epochs_since_update > 5`, i.e. `patience=6` here.
5. PMAC extension: optional per-transition `weights` either resample the bootstrap
   ("resample") or scale each sample's NLL ("loss"); the holdout MSE used for snapshots and
   elites is then weighted the same way, so elites are chosen for the weighted distribution.
6. An empty holdout set raises ValueError (jannerm would silently produce NaN losses).
7. Optional `normalize_targets` (off by default; on for MBPO/PMAC on InvertedPendulum,
   docs/ambiguities.md #17) standardises the targets, so the log-variance bounds act in
   standardised units.
Unchanged from jannerm: the holdout is min(N * ratio, 5000) random transitions, the normaliser
is refit on the training part, bootstrap indices are drawn once per call and reshuffled every
epoch, the last partial minibatch is used, only weights and biases are snapshotted (the shared
logvar bounds are not), the holdout loss is the MSE of the mean, and the Adam state persists
across `train_model` calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from algorithms.nets import EnsembleMLP

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
    # in jannerm/mbpo or PETS, which fit raw targets; see `_bound`). Off by default.
    normalize_targets: bool = False

    def __post_init__(self) -> None:
        # A list would make the frozen config unhashable; store a tuple whatever was passed.
        object.__setattr__(self, "weight_decay", tuple(float(w) for w in self.weight_decay))
        if self.members < 1:
            raise ValueError(f"members must be >= 1, got {self.members}")
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
    member's holdout MSE after the last `train_model` (inf before training).
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
            cfg.members, self.in_dim, 2 * self.out_dim, [cfg.hidden] * cfg.layers, nn.SiLU
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
        # Diagnostics of the last train_model call (not saved): holdout rows (indices into
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
        # Created once and kept across train_model calls, like jannerm's single TF optimiser.
        # fused=True: one kernel for all parameters (CPU and CUDA in torch >= 2.4).
        self.optim = torch.optim.Adam(groups, lr=cfg.lr, fused=True)

    @property
    def device(self) -> torch.device:
        """Where the model lives; follows `.to()` (read off a buffer, not stored)."""
        return self.in_mean.device

    # ------------------------------------------------------------------ network
    def _bound(self, out: Tensor) -> tuple[Tensor, Tensor]:
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
        return self._bound(self.mlp(x_norm))

    def _member_params(self, members: Tensor) -> dict[str, Tensor]:
        """The MLP's parameters restricted to `members` [M]: every tensor [E, ...] -> [M, ...]
        (a copy of a few MB at most, made once per call, not per chunk)."""
        return {n: p.index_select(0, members) for n, p in self.mlp.named_parameters()}

    def _forward_params(self, x_norm: Tensor, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The same EnsembleMLP on a gathered parameter set: x_norm [M, B, in] -> mean, logvar
        [M, B, out]; the cost scales with M rather than E."""
        return self._bound(torch.func.functional_call(self.mlp, params, (x_norm,)))

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

    def _inputs(self, obs: Tensor, act: Tensor) -> Tensor:
        return torch.cat([obs, act], dim=-1).to(self.device, torch.float32)  # [B, in]

    def _targets(self, obs: Tensor, next_obs: Tensor, reward: Tensor) -> Tensor:
        rew = reward.reshape(-1, 1)  # accepts [N] or [N, 1]
        return torch.cat([rew, next_obs - obs], dim=-1).to(self.device, torch.float32)  # [N, out]

    # ----------------------------------------------------------------- training
    def train_step(self, x_norm: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        """One Adam step on a minibatch for all members at once.

        x_norm [E, b, in], target [E, b, out], weight [E, b] or None (per-sample NLL factors).
        Returns the detached loss (NLL summed over members + logvar-bound penalty; the L2 term
        lives in Adam, see module docstring) as a 0-dim tensor: no host sync here."""
        mean, logvar = self(x_norm)  # [E, b, out] each
        # Gaussian NLL up to constants: (mu - y)^2 / var + log var.
        nll = (mean - target).square() * torch.exp(-logvar) + logvar  # [E, b, out]
        if weight is not None:
            nll = nll * weight.unsqueeze(-1)  # [E, b, out]
        # Mean over batch and dims, summed over members == sum / (b * out).
        loss = nll.sum() / (nll.shape[1] * nll.shape[2])
        bounds = self.max_logvar.sum() - self.min_logvar.sum()
        loss = loss + self.cfg.logvar_bound_penalty * bounds
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        return loss.detach()

    @torch.no_grad()
    def l2_penalty(self) -> Tensor:
        """sum_l decay_l * sum(W_l^2) / 2 over all members (jannerm's tf.nn.l2_loss terms)."""
        total = torch.zeros((), device=self.device)
        for lin, wd in zip(self.mlp.linear_layers(), self.cfg.weight_decay, strict=True):
            total += wd * 0.5 * lin.weight.square().sum()
        return total

    @torch.no_grad()
    def _member_mse(self, x_norm: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
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
        x = self.normalise(self._inputs(obs, act))
        return self._member_mse(x, self._targets(obs, next_obs, reward), w)

    @torch.no_grad()
    def select_elites(self, holdout_mse: Tensor) -> None:
        """Store per-member holdout MSE [E] and make the `elites` lowest the elites (jannerm's
        argsort; NaN sorts last), kept sorted by member index."""
        self.holdout_mse.copy_(holdout_mse)
        best = torch.argsort(holdout_mse)[: self.cfg.elites]
        self.elite_idx.copy_(torch.sort(best).values)

    def _check_generator(self, generator: torch.Generator) -> None:
        if generator.device.type != self.device.type:
            raise ValueError(
                f"generator is on {generator.device}, model on {self.device}; "
                "pass a generator created on the model's device"
            )

    def train_model(
        self,
        obs: Tensor,
        act: Tensor,
        next_obs: Tensor,
        reward: Tensor,
        generator: torch.Generator,
        weights: Tensor | None = None,
        weighting: Literal["resample", "loss"] = "resample",
    ) -> dict[str, float]:
        """Fit on N real transitions: obs, next_obs [N, D], act [N, A], reward [N] (or [N, 1]),
        optional weights [N] >= 0 (PMAC's mixture), all on the model's device.

        Holdout: a random min(int(N * holdout_ratio), max_holdout) subset. Bootstrap: every
        member gets N_train indices drawn with replacement from the training part, uniformly,
        or proportionally to `weights` if weighting == "resample"; with weighting == "loss"
        the draw is uniform and each sample's NLL is scaled by its weight (mean 1 over the
        training part). Trains until no member's (weighted) holdout MSE improved by more than
        `improvement_threshold` (relative) for `patience` epochs, or `max_epochs`; then
        restores each member's best snapshot and picks the elites.

        Returns {"model_loss": mean minibatch loss of the last epoch + L2 term,
        "holdout_mse": mean holdout MSE of the elites, "model_epochs": epochs run}."""
        cfg, dev, E = self.cfg, self.device, self.cfg.members
        self._check_generator(generator)
        if weighting not in ("resample", "loss"):
            raise ValueError(f"weighting must be 'resample' or 'loss', got {weighting!r}")
        inputs = self._inputs(obs, act)  # [N, in]
        targets = self._targets(obs, next_obs, reward)  # [N, out]
        N = inputs.shape[0]
        n_hold = min(int(N * cfg.holdout_ratio), cfg.max_holdout)
        n_train = N - n_hold
        if n_hold < 1 or n_train < 1:
            raise ValueError(
                f"need a non-empty holdout and training set: N={N} transitions with "
                f"holdout_ratio={cfg.holdout_ratio} gives {n_hold} holdout / {n_train} train"
            )
        w = None
        if weights is not None:
            w = weights.to(dev, torch.float32).reshape(-1)  # [N]
            if w.shape[0] != N:
                raise ValueError(f"weights has {w.shape[0]} entries for N={N} transitions")
            if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
                raise ValueError("weights must be finite and >= 0")

        perm = torch.randperm(N, generator=generator, device=dev)  # [N]
        hold, train = perm[:n_hold], perm[n_hold:]  # [n_hold], [n_train]
        self.last_holdout_idx = hold
        self.fit_normaliser(inputs[train], targets[train] if cfg.normalize_targets else None)
        x_train = self.normalise(inputs[train])  # [n_train, in]
        x_hold = self.normalise(inputs[hold])  # [n_hold, in]
        y_train, y_hold = targets[train], targets[hold]  # [n_train, out], [n_hold, out]

        w_hold = loss_w = None
        if w is not None:
            w_train = w[train]  # [n_train]
            train_mass = float(w_train.sum())
            if not train_mass > 0:
                raise ValueError("weights are zero on every training transition")
            hold_mass = float(w[hold].sum())
            # Zero mass on the holdout would make the weighted MSE 0/0: fall back to uniform.
            w_hold = w[hold] / hold_mass if hold_mass > 0 else None  # [n_hold]
            if weighting == "resample":
                boot = torch.multinomial(
                    w_train, E * n_train, replacement=True, generator=generator
                ).view(E, n_train)  # [E, n_train]
            else:
                loss_w = w_train * (n_train / train_mass)  # [n_train], mean 1
        if w is None or weighting == "loss":
            boot = torch.randint(n_train, (E, n_train), generator=generator, device=dev)

        # One gather per minibatch: inputs, targets (and loss weights) side by side.
        cols = [x_train, y_train] + ([loss_w.unsqueeze(1)] if loss_w is not None else [])
        data = torch.cat(cols, dim=1)  # [n_train, in + out (+1)]
        d_in, d_out = self.in_dim, self.out_dim

        # Per-member snapshots of every per-member parameter (weights and biases).
        params = list(self.mlp.parameters())
        best_params = [p.detach().clone() for p in params]
        best = [math.inf] * E
        since_update, epoch, last_loss = 0, 0, math.nan
        self.holdout_history = []
        while cfg.max_epochs is None or epoch < cfg.max_epochs:
            epoch += 1
            order = torch.rand(E, n_train, generator=generator, device=dev).argsort(dim=1)
            boot = boot.gather(1, order)  # [E, n_train], reshuffled per member
            loss_sum = torch.zeros((), device=dev)
            n_batches = 0
            for s in range(0, n_train, cfg.batch_size):
                batch = data[boot[:, s : s + cfg.batch_size]]  # [E, b, in + out (+1)]
                weight = batch[..., -1] if loss_w is not None else None  # [E, b]
                loss_sum += self.train_step(
                    batch[..., :d_in], batch[..., d_in : d_in + d_out], weight
                )
                n_batches += 1
            mse = self._member_mse(x_hold, y_hold, w_hold)  # [E]
            # The one host sync per epoch: holdout MSEs and the epoch loss together.
            *mse_list, loss_total = torch.cat([mse, loss_sum.view(1)]).tolist()
            last_loss = loss_total / n_batches
            self.holdout_history.append(mse_list)
            improved = [
                e
                for e, m in enumerate(mse_list)
                if best[e] == math.inf or best[e] - m > cfg.improvement_threshold * best[e]
            ]
            if improved:
                idx = torch.tensor(improved, device=dev)
                for p, bp in zip(params, best_params, strict=True):
                    bp.index_copy_(0, idx, p.detach().index_select(0, idx))
                for e in improved:
                    best[e] = mse_list[e]
                since_update = 0
            else:
                since_update += 1
                if since_update >= cfg.patience:
                    break

        with torch.no_grad():
            for p, bp in zip(params, best_params, strict=True):
                p.copy_(bp)
        # Re-evaluate after restoring (as jannerm does) rather than trusting `best`: it is the
        # same number by construction and the stored value then provably matches the weights.
        self.select_elites(self._member_mse(x_hold, y_hold, w_hold))
        elite_mse = float(self.holdout_mse[self.elite_idx].mean())
        return {
            "model_loss": last_loss + float(self.l2_penalty()),
            "holdout_mse": elite_mse,
            "model_epochs": epoch,
        }

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
        self._check_generator(generator)
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
        x_all = self.normalise(self._inputs(obs, act))  # [B, in]
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
    def predict_mean(self, obs: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        """Mean over elites of the members' means: obs [B, D], act [B, A] -> next_obs [B, D],
        reward [B] (diagnostics, e.g. one-step error)."""
        x_norm = self.normalise(self._inputs(obs, act))  # [B, in]
        n = self.elite_idx.shape[0]
        params = self._member_params(self.elite_idx)
        parts = []
        for s in range(0, x_norm.shape[0], _CHUNK):
            x = x_norm[s : s + _CHUNK].unsqueeze(0).expand(n, -1, -1)  # [n, b, in]
            mean, _ = self._forward_params(x, params)  # [n, b, out]
            parts.append(mean.mean(0))  # [b, out]
        out = torch.cat(parts) if parts else x_norm.new_zeros(0, self.out_dim)  # [B, out]
        return obs + out[:, 1:], out[:, 0]
