"""Interval estimates that hold up with few seeds, after Agarwal et al., "Deep Reinforcement Learning at the Edge of the
Statistical Precipice" (NeurIPS 2021): the interquartile mean (IQM), stratified bootstrap confidence intervals, the
probability of improvement and performance profiles. The definitions are rliable's (its `metrics` and `library`
modules), written here with numpy alone.

A score matrix has one row per run (seed) and one column per task; runs of different tasks are independent, so the
bootstrap resamples the runs of each task on their own (stratified), as rliable's StratifiedBootstrap does.
"""

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_SAMPLES = 2000  # resamples per interval (rliable's examples use 2,000 to 50,000)
SEED = 0  # the bootstrap's generator: the same scores give the same intervals


def iqm(scores: np.ndarray) -> float:
    """The mean of the middle half of all the scores: the lowest and the highest quarter cut, by count (as
    scipy.stats.trim_mean(scores, 0.25, axis=None), which rliable uses)."""
    flat = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    cut = int(0.25 * len(flat))
    return float(flat[cut : len(flat) - cut].mean())


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y): the chance that a run of X beats a run of Y on a task drawn at random, ties counting a half; x and y
    are score matrices over the same tasks (their numbers of runs may differ)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    per_task = [(np.sign(x[:, None, t] - y[None, :, t]).mean() + 1) / 2 for t in range(x.shape[1])]
    return float(np.mean(per_task))


def performance_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """The fraction of all runs (every task's) whose score is above each tau."""
    flat = np.asarray(scores, dtype=np.float64).ravel()
    return (flat[None, :] > np.asarray(taus)[:, None]).mean(axis=1)


def resample(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A stratified bootstrap sample: each task's runs drawn with replacement from that task's own runs."""
    runs, tasks = scores.shape
    rows = rng.integers(0, runs, size=(runs, tasks))
    return scores[rows, np.arange(tasks)]


def interval(statistic, *score_matrices: np.ndarray) -> tuple[float, float, float]:
    """The statistic of the score matrices, and its CONFIDENCE percentile interval over BOOTSTRAP_SAMPLES stratified
    bootstrap samples (each matrix resampled on its own, as rliable does for the probability of improvement)."""
    if any(len(scores) < 2 for scores in score_matrices):
        raise ValueError("a confidence interval needs at least two runs (seeds) of each task")
    rng = np.random.default_rng(SEED)
    samples = [statistic(*(resample(s, rng) for s in score_matrices)) for _ in range(BOOTSTRAP_SAMPLES)]
    low, high = np.percentile(samples, [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)])
    return statistic(*score_matrices), float(low), float(high)
