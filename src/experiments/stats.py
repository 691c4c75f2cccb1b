"""Statistics of a grid, after rliable (Agarwal et al., NeurIPS 2021), the one place for them.

Scores are matrices ``[runs, scenarios]`` per method. Interval estimates are 95 % percentile
stratified-bootstrap CIs (runs are resampled within each scenario), ``BOOTSTRAP_REPS`` replications
from a seeded generator, so that a report is byte-identical when run again. The bootstrap is
vectorised here (rliable loops over replications in Python, ~20x slower for our grids) and draws
the same resamples as rliable's ``get_interval_estimates`` for the same seed: the tests check that
the estimates and CIs equal rliable's. Performance profiles are rliable's own.

Verdict rule (``verdict``), for "a vs b" on one scenario: the difference of the mean final scores,
a - b, with its 95 % CI from independent stratified resampling of a's and b's runs.
    "above"  when the CI lies above 0, "below" when it lies below 0 (signs flipped for metrics
             where lower is better);
    "level"  when the CI lies inside [-margin, +margin] (the spec's non-inferiority margin);
    "no difference shown" otherwise (the CI holds 0 but is wider than the margin).
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence, Tuple

import numpy as np

BOOTSTRAP_REPS = 2000
CI_SIZE = 0.95
SEED = 0


def _rliable():
    from rliable import library, metrics
    return library, metrics


def iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean: the 25 % trimmed mean over all runs and scenarios (rliable's aggregate_iqm),
    over the last two axes of ``scores [..., runs, scenarios]``."""
    from scipy.stats import trim_mean

    flat = scores.reshape(scores.shape[:-2] + (-1,))
    return trim_mean(flat, proportiontocut=0.25, axis=-1)


def mean(scores: np.ndarray) -> np.ndarray:
    return scores.reshape(scores.shape[:-2] + (-1,)).mean(axis=-1)


AGGREGATES: Dict[str, Callable[[np.ndarray], np.ndarray]] = {"IQM": iqm, "mean": mean}


def _resample(scores: np.ndarray, reps: int, rng: np.random.RandomState) -> np.ndarray:
    """``[reps, runs, scenarios]``: runs drawn with replacement within each scenario (rliable's
    StratifiedBootstrap draws, in the same order from the same seeded generator)."""
    runs, tasks = scores.shape
    idx = rng.randint(0, runs, size=(reps, runs, tasks))
    return scores[idx, np.arange(tasks)[None, None, :]]


def _resample_pair(x: np.ndarray, y: np.ndarray, reps: int) -> Tuple[np.ndarray, np.ndarray]:
    """Independent stratified resamples of x and y, drawn per replication x first then y, in the
    order rliable's StratifiedIndependentBootstrap draws them: ``([reps, runs_x, tasks], [reps, runs_y, tasks])``."""
    rng = np.random.RandomState(SEED)
    ix = np.empty((reps,) + x.shape, dtype=np.int64)
    iy = np.empty((reps,) + y.shape, dtype=np.int64)
    for r in range(reps):
        ix[r] = rng.randint(0, x.shape[0], size=x.shape)
        iy[r] = rng.randint(0, y.shape[0], size=y.shape)
    return x[ix, np.arange(x.shape[1])], y[iy, np.arange(y.shape[1])]


def _ci(boot: np.ndarray) -> Tuple[float, float]:
    alpha = (1.0 - CI_SIZE) / 2
    return float(np.percentile(boot, 100 * alpha)), float(np.percentile(boot, 100 * (1 - alpha)))


def interval_estimates(score_dict: Dict[str, np.ndarray], aggregate: str,
                       reps: int = BOOTSTRAP_REPS) -> Dict[str, Tuple[float, float, float]]:
    """``{method: (point, ci_low, ci_high)}`` of an aggregate ('IQM' | 'mean') over ``[runs, scenarios]``,
    95 % percentile stratified-bootstrap CI. Vectorised; equal to rliable's get_interval_estimates with
    the same seed (tests/experiments/test_stats.py checks it)."""
    fn = AGGREGATES[aggregate]
    out = {}
    for key, scores in score_dict.items():   # each method seeded alike: adding one changes no other's CI
        scores = np.asarray(scores, dtype=float)
        boot = fn(_resample(scores, reps, np.random.RandomState(SEED)))
        out[key] = (float(fn(scores[None])[0]), *_ci(boot))
    return out


def difference(x: np.ndarray, y: np.ndarray, reps: int = BOOTSTRAP_REPS) -> Tuple[float, float, float]:
    """Mean of ``x`` minus mean of ``y`` (each ``[runs, scenarios]``) with its 95 % CI, the runs of x and
    y resampled independently within each scenario (rliable's StratifiedIndependentBootstrap)."""
    bx, by = _resample_pair(np.asarray(x, float), np.asarray(y, float), reps)
    boot = bx.mean(axis=(1, 2)) - by.mean(axis=(1, 2))
    return (float(np.mean(x) - np.mean(y)), *_ci(boot))


def _p_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 per scenario, averaged over scenarios, for ``x [..., runs_x, tasks]`` and
    ``y [..., runs_y, tasks]`` (the Mann-Whitney U / (n_x n_y) that rliable computes)."""
    gt = (x[..., :, None, :] > y[..., None, :, :]).mean(axis=(-3, -2))
    eq = (x[..., :, None, :] == y[..., None, :, :]).mean(axis=(-3, -2))
    return (gt + 0.5 * eq).mean(axis=-1)


def probability_of_improvement(x: np.ndarray, y: np.ndarray,
                               reps: int = BOOTSTRAP_REPS) -> Tuple[float, float, float]:
    """P(a run of x scores above a run of y), averaged over scenarios (rliable's definition), with its
    95 % CI from independent stratified resampling of x's and y's runs."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    bx, by = _resample_pair(x, y, reps)
    return (float(_p_improvement(x, y)), *_ci(_p_improvement(bx, by)))


def performance_profile(score_dict: Dict[str, np.ndarray], taus: Sequence[float], reps: int = BOOTSTRAP_REPS
                        ) -> Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{method: (fraction of runs with score > tau, ci_low, ci_high)}`` over ``taus`` (rliable's
    score distributions, computed by rliable)."""
    library, _ = _rliable()
    out = {}
    for key in score_dict:
        np.random.seed(SEED)
        prof, cis = library.create_performance_profile({key: score_dict[key]}, np.asarray(taus), reps=reps)
        out[key] = (np.asarray(prof[key]), np.asarray(cis[key][0]), np.asarray(cis[key][1]))
    return out


def verdict(diff: float, low: float, high: float, margin: float, higher_is_better: bool = True) -> str:
    """The stated CI rule (module docstring): above | below | level | no difference shown."""
    if not higher_is_better:
        diff, low, high = -diff, -high, -low
    if low > 0:
        return "above"
    if high < 0:
        return "below"
    if margin > 0 and -margin <= low and high <= margin:
        return "level"
    return "no difference shown"


def mean_ci(values: np.ndarray, reps: int = BOOTSTRAP_REPS) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of ``values [runs, points]``: the mean over runs and its 95 % bootstrap CI (runs
    resampled), for learning-curve bands."""
    rng = np.random.RandomState(SEED)
    n = values.shape[0]
    idx = rng.randint(0, n, size=(reps, n))
    boot = values[idx].mean(axis=1)                   # [reps, points]
    alpha = (1.0 - CI_SIZE) / 2
    return values.mean(axis=0), np.quantile(boot, alpha, axis=0), np.quantile(boot, 1 - alpha, axis=0)


def common_grid(curves: Sequence[Tuple[Sequence[float], Sequence[float]]], points: int = 100
                ) -> Tuple[np.ndarray, np.ndarray]:
    """Resample curves onto one step grid from the latest first test to the earliest last test (no
    run is extrapolated, so the mean never ends in a stretch covered by fewer runs).
    Returns ``(steps [points], values [runs, points])``; an empty grid when the runs do not overlap."""
    starts = [float(s[0]) for s, _ in curves if len(s)]
    ends = [float(s[-1]) for s, _ in curves if len(s)]
    if not starts or len(starts) != len(curves) or max(starts) >= min(ends):
        return np.zeros(0), np.zeros((len(curves), 0))
    grid = np.linspace(max(starts), min(ends), points)
    values = np.stack([np.interp(grid, np.asarray(s, float), np.asarray(v, float)) for s, v in curves])
    return grid, values


def fmt_ci(point: float, low: float, high: float, digits: int = 1) -> str:
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
