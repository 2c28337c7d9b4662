"""Statistics over seeds: summaries of one arm's scores and paired comparisons of two arms.

A study trains every arm with the same seeds, so seed k of one arm and seed k of another share the
split, the batch order and the trunk's initial weights: their scores are paired, and the
comparison works on the per-seed differences. Intervals are Student-t 95% intervals of a mean
(``scipy.stats.t``); the tests are the paired t-test (``scipy.stats.ttest_rel``, whose p-value
agrees with the interval: p < 0.05 exactly when the interval excludes 0) and the Wilcoxon
signed-rank test (``scipy.stats.wilcoxon``, which assumes no normality). With fewer than
:data:`MIN_SEEDS_FOR_TEST` seeds no test is run and the p-values are ``None``.

Degenerate inputs have defined answers instead of NaNs: all differences zero gives p = 1 for both
tests (the arms scored identically on every seed); a constant non-zero difference gives a t-test
p of 0 (zero spread, the limit of the t statistic); one seed has no spread and no interval.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["MIN_SEEDS_FOR_TEST", "ALPHA", "Summary", "Comparison", "summarize", "compare_paired", "format_number",
           "format_p"]

MIN_SEEDS_FOR_TEST = 3  # below this a paired test has no power worth reporting (Wilcoxon's smallest p is 0.5 at n=2)
ALPHA = 0.05  # the level of the verdict and the 95% intervals


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (ddof=1) and 95% t-interval of the mean of ``n`` values;
    ``std`` and ``ci95`` are None for a single value."""

    n: int
    mean: float
    std: float | None
    ci95: tuple[float, float] | None

    def as_dict(self) -> dict:
        return {**asdict(self), "ci95": None if self.ci95 is None else list(self.ci95)}


@dataclass(frozen=True)
class Comparison:
    """A paired comparison ``a − b`` of one metric over seeds.

    Attributes:
        a, b: the two arms.
        metric: the metric compared.
        differences: per-seed ``a − b``.
        difference: their mean; ``ci95`` its 95% t-interval (None for one seed).
        p_value: two-sided paired t-test p-value; ``p_wilcoxon``: Wilcoxon signed-rank p-value
            (both None with fewer than :data:`MIN_SEEDS_FOR_TEST` seeds).
        verdict: one plain line, e.g. ``hybrid − twin macro-F1: −0.012 [−0.031, 0.007], p = 0.19
            over 5 seeds: no detectable difference``.
    """

    a: str
    b: str
    metric: str
    differences: tuple[float, ...]
    difference: float
    ci95: tuple[float, float] | None
    p_value: float | None
    p_wilcoxon: float | None
    verdict: str

    @property
    def n(self) -> int:
        return len(self.differences)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["differences"] = list(self.differences)
        out["ci95"] = None if self.ci95 is None else list(self.ci95)
        return out


def _interval(values: np.ndarray) -> tuple[float, float] | None:
    n = len(values)
    if n < 2:
        return None
    from scipy.stats import t

    mean, half = float(values.mean()), float(t.ppf(1 - ALPHA / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return (mean - half, mean + half)


def summarize(values: Sequence[float]) -> Summary:
    """The :class:`Summary` of per-seed ``values``.

    Raises:
        ValueError: no values.

    Example:
        >>> summarize([0.8, 0.9, 1.0]).ci95  # doctest: +ELLIPSIS
        (0.65..., 1.14...)
    """
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("summarize needs at least one value; got none")
    std = float(data.std(ddof=1)) if data.size > 1 else None
    return Summary(int(data.size), float(data.mean()), std, _interval(data))


def _p_values(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    from scipy.stats import ttest_rel, wilcoxon

    differences = first - second
    if not np.any(differences):
        return 1.0, 1.0
    with warnings.catch_warnings():  # scipy warns about ties and small samples; the p-values stand
        warnings.simplefilter("ignore")
        p_wilcoxon = float(wilcoxon(differences).pvalue)
        if np.all(differences == differences[0]):
            return 0.0, p_wilcoxon
        return float(ttest_rel(first, second).pvalue), p_wilcoxon


def format_number(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals and a true minus sign (U+2212), as in the verdict lines."""
    text = f"{value:.{digits}f}"
    return text.replace("-", "\u2212") if value < 0 and float(text) != 0 else text.lstrip("-")


def format_p(p: float) -> str:
    """``p = 0.19``, ``p = 0.003``, ``p < 0.001``."""
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.2g}" if p >= 0.01 else f"p = {p:.3f}"


def compare_paired(
    a_values: Sequence[float], b_values: Sequence[float], a: str = "a", b: str = "b", metric: str = "score"
) -> Comparison:
    """Compare arm ``a`` with arm ``b`` on paired per-seed values (``a_values[k]`` and
    ``b_values[k]`` come from seed k).

    Args:
        a_values, b_values: per-seed scores, same length.
        a, b: arm names for the verdict.
        metric: metric name for the verdict (e.g. ``macro-F1``).

    Returns:
        The :class:`Comparison` of ``a − b``.

    Raises:
        ValueError: the two lists are empty or differ in length.

    Example:
        >>> compare_paired([0.9, 0.8, 0.85], [0.9, 0.8, 0.85], "hybrid", "twin", "macro-F1").verdict
        'hybrid − twin macro-F1: 0.000 [0.000, 0.000], p = 1 over 3 seeds: identical on every seed'
    """
    first, second = np.asarray(a_values, dtype=np.float64), np.asarray(b_values, dtype=np.float64)
    if first.shape != second.shape or first.ndim != 1 or first.size == 0:
        raise ValueError(
            f"paired values must be two equal-length, non-empty lists; got {first.shape} and {second.shape}"
        )
    differences = first - second
    n, mean, ci = differences.size, float(differences.mean()), _interval(differences)
    head = f"{a} \u2212 {b} {metric}: {format_number(mean)}"
    if ci is not None:
        head += f" [{format_number(ci[0])}, {format_number(ci[1])}]"
    seeds = f"{n} seed{'s' if n != 1 else ''}"
    if n < MIN_SEEDS_FOR_TEST:
        verdict = f"{head} over {seeds}: too few seeds for a test (at least {MIN_SEEDS_FOR_TEST} needed)"
        return Comparison(a, b, metric, tuple(differences.tolist()), mean, ci, None, None, verdict)
    p_value, p_wilcoxon = _p_values(first, second)
    if not np.any(differences):
        outcome = "identical on every seed"
    elif p_value < ALPHA:
        outcome = f"{a} {'better' if mean > 0 else 'worse'} (significant at {ALPHA:g})"
    else:
        outcome = "no detectable difference"
    verdict = f"{head}, {format_p(p_value)} over {seeds}: {outcome}"
    return Comparison(a, b, metric, tuple(differences.tolist()), mean, ci, p_value, p_wilcoxon, verdict)
