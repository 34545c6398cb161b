"""Fitting the probabilistic ensemble (`algorithms.parts.ensemble`) on real transitions:
holdout split, bootstrap, minibatch Adam steps on the Gaussian NLL, early stopping,
per-member best snapshots restored, elites chosen (jannerm/mbpo `mbpo/models/bnn.py`,
`BNN.train`).

Deviations from jannerm/mbpo (all deliberate; numbered as in `algorithms.parts.ensemble`):
2. Weight decay is applied by Adam's coupled (L2) `weight_decay`, one parameter group per layer:
   torch's Adam adds `decay * w` to the gradient before the moment updates, which is exactly the
   gradient of jannerm's `decay * tf.nn.l2_loss(w) = decay * sum(w^2) / 2` in the loss, so the
   optimisation is the same without the extra autograd work. The term is still added to the
   reported `model_loss`.
4. Early stopping halts after `patience` (default 5) consecutive epochs without a >1% relative
   improvement of any member; jannerm halts when `epochs_since_update > 5`, i.e. after 6
   such epochs (`patience=6` reproduces it; docs/ambiguities.md #22).
5. Weighted data (PMAC and the other schemes of `algorithms.weighting`): optional
   per-transition `weights` either resample the bootstrap ("resample") or scale each
   sample's NLL ("loss"); PER's importance weights (`loss_factors`) scale the resampled
   samples' NLL. The holdout MSE used for snapshots and elites is weighted by weights x
   factors, the distribution the weighted loss targets, so elites are chosen for it.
6. An empty holdout set raises ValueError (jannerm would silently produce NaN losses).
Unchanged from jannerm: the holdout is min(N * ratio, 5000) random transitions, the normaliser
is refit on the training part, bootstrap indices are drawn once per call and reshuffled every
epoch, the last partial minibatch is used, only weights and biases are snapshotted (the shared
logvar bounds are not), the holdout loss is the MSE of the mean, and the Adam state persists
across fits.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from algorithms.parts.ensemble import ProbabilisticEnsemble


def train_step(
    model: ProbabilisticEnsemble, x_norm: Tensor, target: Tensor, weight: Tensor | None = None
) -> Tensor:
    """One Adam step on a minibatch for all members at once.

    x_norm [E, b, in], target [E, b, out], weight [E, b] or None (per-sample NLL factors).
    Returns the detached loss (NLL summed over members + logvar-bound penalty; the L2 term
    lives in Adam, deviation 2 above) as a 0-dim tensor: no host sync here."""
    mean, logvar = model(x_norm)  # [E, b, out] each
    # Gaussian NLL up to constants: (mu - y)^2 / var + log var.
    nll = (mean - target).square() * torch.exp(-logvar) + logvar  # [E, b, out]
    if weight is not None:
        nll = nll * weight.unsqueeze(-1)  # [E, b, out]
    # Mean over batch and dims, summed over members == sum / (b * out).
    loss = nll.sum() / (nll.shape[1] * nll.shape[2])
    bounds = model.max_logvar.sum() - model.min_logvar.sum()
    loss = loss + model.cfg.logvar_bound_penalty * bounds
    model.optim.zero_grad(set_to_none=True)
    loss.backward()
    model.optim.step()
    return loss.detach()


@torch.no_grad()
def l2_penalty(model: ProbabilisticEnsemble) -> Tensor:
    """sum_l decay_l * sum(W_l^2) / 2 over all members (jannerm's tf.nn.l2_loss terms)."""
    total = torch.zeros((), device=model.device)
    for lin, wd in zip(model.mlp.linear_layers(), model.cfg.weight_decay, strict=True):
        total += wd * 0.5 * lin.weight.square().sum()
    return total


def fit_ensemble(
    model: ProbabilisticEnsemble,
    obs: Tensor,
    act: Tensor,
    next_obs: Tensor,
    reward: Tensor,
    generator: torch.Generator,
    weights: Tensor | None = None,
    weighting: Literal["resample", "loss"] = "resample",
    loss_factors: Tensor | None = None,
) -> dict[str, float]:
    """Fit on N real transitions: obs, next_obs [N, D], act [N, A], reward [N] (or [N, 1]),
    optional weights [N] >= 0 (the weighting scheme's probabilities) and loss_factors
    [N] > 0 (importance weights, only with weights), all on the model's device.

    Holdout: a random min(int(N * holdout_ratio), max_holdout) subset. Bootstrap: every
    member gets N_train indices drawn with replacement from the training part, uniformly,
    or proportionally to `weights` if weighting == "resample", each drawn sample's NLL then
    scaled by its loss factor; with weighting == "loss" the draw is uniform and each
    sample's NLL is scaled by weight x factor (mean 1 over the training part). Trains
    until no member's (weighted) holdout MSE improved by more than
    `improvement_threshold` (relative) for `patience` epochs, or `max_epochs`; then
    restores each member's best snapshot and picks the elites.

    Returns {"model_loss": mean minibatch loss of the last epoch + L2 term,
    "holdout_mse": mean holdout MSE of the elites, "model_epochs": epochs run}."""
    cfg, dev, E = model.cfg, model.device, model.cfg.members
    model.check_generator(generator)
    if weighting not in ("resample", "loss"):
        raise ValueError(f"weighting must be 'resample' or 'loss', got {weighting!r}")
    inputs = model.inputs(obs, act)  # [N, in]
    targets = model.targets(obs, next_obs, reward)  # [N, out]
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
    factors = None
    if loss_factors is not None:
        if w is None:
            raise ValueError("loss_factors need weights")
        factors = loss_factors.to(dev, torch.float32).reshape(-1)  # [N]
        if factors.shape[0] != N or not bool((factors > 0).all()):
            raise ValueError(f"loss_factors must be {N} values > 0")

    perm = torch.randperm(N, generator=generator, device=dev)  # [N]
    hold, train = perm[:n_hold], perm[n_hold:]  # [n_hold], [n_train]
    model.last_holdout_idx = hold
    model.fit_normaliser(inputs[train], targets[train] if cfg.normalize_targets else None)
    x_train = model.normalise(inputs[train])  # [n_train, in]
    x_hold = model.normalise(inputs[hold])  # [n_hold, in]
    y_train, y_hold = targets[train], targets[hold]  # [n_train, out], [n_hold, out]

    w_hold = loss_w = None
    if w is not None:
        # What the weighted loss targets (the holdout's and "loss"'s weights): w x factors.
        target = w if factors is None else w * factors  # [N]
        w_train = target[train]  # [n_train]
        train_mass = float(w_train.sum())
        if not train_mass > 0:
            raise ValueError("weights are zero on every training transition")
        hold_mass = float(target[hold].sum())
        # Zero mass on the holdout would make the weighted MSE 0/0: fall back to uniform.
        w_hold = target[hold] / hold_mass if hold_mass > 0 else None  # [n_hold]
        if weighting == "resample":
            boot = torch.multinomial(
                w[train], E * n_train, replacement=True, generator=generator
            ).view(E, n_train)  # [E, n_train]
            loss_w = None if factors is None else factors[train]  # [n_train]
        else:
            loss_w = w_train * (n_train / train_mass)  # [n_train], mean 1
    if w is None or weighting == "loss":
        boot = torch.randint(n_train, (E, n_train), generator=generator, device=dev)

    # One gather per minibatch: inputs, targets (and loss weights) side by side.
    cols = [x_train, y_train] + ([loss_w.unsqueeze(1)] if loss_w is not None else [])
    data = torch.cat(cols, dim=1)  # [n_train, in + out (+1)]
    d_in, d_out = model.in_dim, model.out_dim

    # Per-member snapshots of every per-member parameter (weights and biases).
    params = list(model.mlp.parameters())
    best_params = [p.detach().clone() for p in params]
    best = [math.inf] * E
    since_update, epoch, last_loss = 0, 0, math.nan
    model.holdout_history = []
    while cfg.max_epochs is None or epoch < cfg.max_epochs:
        epoch += 1
        order = torch.rand(E, n_train, generator=generator, device=dev).argsort(dim=1)
        boot = boot.gather(1, order)  # [E, n_train], reshuffled per member
        loss_sum = torch.zeros((), device=dev)
        n_batches = 0
        for s in range(0, n_train, cfg.batch_size):
            batch = data[boot[:, s : s + cfg.batch_size]]  # [E, b, in + out (+1)]
            weight = batch[..., -1] if loss_w is not None else None  # [E, b]
            loss_sum += train_step(
                model, batch[..., :d_in], batch[..., d_in : d_in + d_out], weight
            )
            n_batches += 1
        mse = model.member_mse(x_hold, y_hold, w_hold)  # [E]
        # The one host sync per epoch: holdout MSEs and the epoch loss together.
        *mse_list, loss_total = torch.cat([mse, loss_sum.view(1)]).tolist()
        last_loss = loss_total / n_batches
        model.holdout_history.append(mse_list)
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
    model.select_elites(model.member_mse(x_hold, y_hold, w_hold))
    elite_mse = float(model.holdout_mse[model.elite_idx].mean())
    return {
        "model_loss": last_loss + float(l2_penalty(model)),
        "holdout_mse": elite_mse,
        "model_epochs": epoch,
    }
