"""CEM planner: optimum of a known quadratic, truncated-normal samples in bounds, the warm
start shifted by one step, NaN returns ranked worst."""

import pytest
import torch

from algorithms.parts.cem import CEMConfig, CEMPlanner, cem, truncated_normal


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_cem_finds_quadratic_optimum():
    target = torch.tensor([[0.3, -0.6], [-0.2, 0.5], [0.7, 0.0]])  # [H=3, A=2], inside [-1, 1]

    def objective(a):  # [N, H, A] -> [N], maximum 0 at `target`
        return -(a - target).square().sum(dim=(1, 2))

    lb, ub = -torch.ones(2), torch.ones(2)
    mean, var = torch.zeros(3, 2), torch.full((3, 2), 4 / 16)  # (ub - lb)^2 / 16
    sol = cem(objective, mean, var, lb, ub, CEMConfig(), _gen())  # 5 iterations
    assert (sol - target).abs().max() < 0.05


def test_truncated_normal_in_two_std():
    x = truncated_normal((200_000,), _gen(), "cpu")
    assert x.min() >= -2 and x.max() <= 2
    assert abs(float(x.mean())) < 0.01
    assert abs(float(x.std()) - 0.8796) < 0.01  # std of N(0, 1) truncated to [-2, 2]


def test_samples_stay_within_action_bounds():
    seen = []

    def objective(a):
        seen.append(a.clone())
        return a.sum(dim=(1, 2))  # pushes the mean towards the upper bound

    lb, ub = torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 0.5])
    mean = torch.tensor([[0.9, 0.45]]).expand(4, -1)  # near the upper bounds
    var = torch.full((4, 2), 10.0)  # far wider than the box
    cem(objective, mean, var, lb, ub, CEMConfig(population=1000, elites=10), _gen())
    samples = torch.cat(seen)
    assert len(seen) == 5
    assert bool((samples >= lb).all()) and bool((samples <= ub).all())


def test_warm_start_shifts_plan_by_one_step():
    planner = CEMPlanner(4, [-2.0], [1.0], CEMConfig(population=50, elites=5), "cpu")
    mid = torch.tensor([-0.5])
    torch.testing.assert_close(planner.prev, mid.expand(4, 1))

    def objective(a):
        return -(a[..., 0] - torch.tensor([0.5, -1.0, 0.2, 0.9])).square().sum(1)

    sol = planner.plan(objective, _gen(3))  # what act() will compute from the same state
    first = planner.act(objective, _gen(3))
    torch.testing.assert_close(first, sol[0])
    torch.testing.assert_close(planner.prev, torch.cat([sol[1:], mid.view(1, 1)]))
    planner.reset()
    torch.testing.assert_close(planner.prev, mid.expand(4, 1))


def test_nan_returns_rank_worst():
    """Sequences with a positive sum return NaN; the valid ones prefer a larger sum. If NaN
    ranked above the valid returns (mbrl-lib's -1e-10 replacement does for negative ones),
    the elites would be the NaN sequences and their mean sum positive."""

    def objective(a):
        s = a.sum(dim=(1, 2))
        return torch.where(s > 0, torch.nan, s - 10.0)

    cfg = CEMConfig(population=400, elites=40, iterations=1, alpha=0.0)
    sol = cem(objective, torch.zeros(3, 2), torch.full((3, 2), 0.25), -torch.ones(2),
              torch.ones(2), cfg, _gen())  # fmt: skip
    assert float(sol.sum()) <= 0.0


@pytest.mark.parametrize(
    "kwargs", [{"elites": 0}, {"elites": 600}, {"alpha": 1.0}, {"iterations": 0}]
)
def test_bad_config_rejected(kwargs):
    with pytest.raises(ValueError, match="cem"):
        CEMConfig(**kwargs)
