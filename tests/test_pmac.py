"""PMAC's policy-adaptation mixture: exact weights (Eq. 4) and the sampler's frequencies."""

import numpy as np
import pytest
import torch
from scipy import stats

from algorithms.pmac import AgeConfig, mixture_weights, segment_of_step, transition_weights


@pytest.mark.parametrize(
    "k, alpha, expected",
    [
        (0, 0.9, [1.0]),
        (1, 0.9, [0.9, 0.1]),
        (2, 0.9, [0.81, 0.09, 0.1]),
        (3, 0.5, [0.125, 0.125, 0.25, 0.5]),
        (4, 0.99, [0.99**4, 0.01 * 0.99**3, 0.01 * 0.99**2, 0.01 * 0.99, 0.01]),
    ],
)
def test_mixture_weights_exact(k, alpha, expected):
    w = mixture_weights(k, alpha)
    np.testing.assert_allclose(w, expected, rtol=0, atol=1e-15)
    assert w.shape == (k + 1,)


@pytest.mark.parametrize("alpha", [0.5, 0.7, 0.8, 0.9, 0.95, 0.99])
def test_mixture_weights_follow_algorithm_1(alpha):
    """Iterating Algorithm 1 (multiply by alpha, append (1-alpha) * old total / alpha
    as Eq. 4 with the multiplied weights) gives the closed form at every k."""
    w = np.array([1.0])
    for k in range(1, 60):
        w = w * alpha
        w = np.append(w, (1 - alpha) * w.sum() / alpha)  # Eq. 4
        np.testing.assert_allclose(w, mixture_weights(k, alpha), rtol=1e-12)
        assert w.sum() == pytest.approx(1.0, abs=1e-12)
        assert w[-1] == pytest.approx(1 - alpha)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5])
def test_alpha_outside_unit_interval_rejected(alpha):
    with pytest.raises(ValueError, match="alpha"):
        mixture_weights(3, alpha)
    with pytest.raises(ValueError, match="alpha"):
        AgeConfig(alpha=alpha)


def test_segment_of_step():
    assert [segment_of_step(s, 500, 250) for s in (0, 499, 500, 749, 750, 1000)] == [
        0,
        0,
        1,
        1,
        2,
        3,
    ]


def test_sampler_frequencies_match_weights_chi_square():
    """Draw a segment by weight, then uniformly inside it: segments of very different sizes
    must still be hit with frequencies equal to their weights (chi-square, p > 0.001)."""
    sizes = [5000, 250, 250, 100, 250, 37]  # warm-up, then segments of unequal length
    segments = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    probs = transition_weights(segments, alpha=0.8)
    gen = torch.Generator().manual_seed(0)
    n = 200_000
    draws = torch.multinomial(probs, n, replacement=True, generator=gen)
    observed = torch.bincount(segments[draws], minlength=len(sizes)).numpy()
    expected = mixture_weights(len(sizes) - 1, 0.8) * n
    chi2, p = stats.chisquare(observed, expected)
    assert p > 1e-3, (observed, expected, chi2)
    # uniform within a segment: transitions of segment 1 are hit equally often
    inside = draws[(segments[draws] == 1)] - sizes[0]
    counts = torch.bincount(inside, minlength=sizes[1]).numpy()
    assert stats.chisquare(counts).pvalue > 1e-3


def test_sampler_detects_wrong_weights():
    """The chi-square test above has power: uniform-over-transitions sampling (MBPO) fails it."""
    sizes = [5000, 250, 250]
    segments = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    gen = torch.Generator().manual_seed(0)
    draws = torch.randint(len(segments), (50_000,), generator=gen)
    observed = torch.bincount(segments[draws], minlength=3).numpy()
    assert stats.chisquare(observed, mixture_weights(2, 0.9) * 50_000).pvalue < 1e-6
