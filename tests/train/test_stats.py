"""Statistics over seeds against hand-computed values and scipy, including the degenerate cases."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from hqnn.train.stats import compare_paired, format_number, format_p, summarize

T_975 = {2: 4.302652729749464, 4: 2.7764451051977987}  # Student t quantiles (tables), df 2 and 4


def test_summary_is_the_t_interval_of_the_mean():
    s = summarize([1.0, 2.0, 3.0])
    assert (s.n, s.mean, s.std) == (3, 2.0, 1.0)
    half = T_975[2] / math.sqrt(3)
    assert s.ci95 == pytest.approx((2.0 - half, 2.0 + half), abs=1e-12)
    values = [0.91, 0.87, 0.93, 0.89, 0.90]
    s = summarize(values)
    half = T_975[4] * np.std(values, ddof=1) / math.sqrt(5)
    assert s.ci95 == pytest.approx((np.mean(values) - half, np.mean(values) + half), abs=1e-12)
    assert s.as_dict()["ci95"] == list(s.ci95)


def test_summary_of_one_value_has_no_spread_and_of_none_fails():
    assert summarize([0.7]).as_dict() == {"n": 1, "mean": 0.7, "std": None, "ci95": None}
    assert summarize([0.5, 0.5, 0.5]).ci95 == (0.5, 0.5)
    with pytest.raises(ValueError, match="at least one value"):
        summarize([])


def test_paired_comparison_matches_scipy():
    hybrid = [0.91, 0.87, 0.93, 0.89, 0.90]
    twin = [0.90, 0.89, 0.90, 0.91, 0.86]
    c = compare_paired(hybrid, twin, "hybrid", "twin", "macro-F1")
    d = np.subtract(hybrid, twin)
    assert c.differences == pytest.approx(tuple(d)) and c.difference == pytest.approx(d.mean())
    half = T_975[4] * d.std(ddof=1) / math.sqrt(5)
    assert c.ci95 == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-12)
    assert c.p_value == pytest.approx(scipy_stats.ttest_rel(hybrid, twin).pvalue, rel=1e-12)
    assert c.p_wilcoxon == pytest.approx(scipy_stats.wilcoxon(d).pvalue, rel=1e-12)
    # the interval and the t-test agree: 0 inside the interval <=> p >= 0.05
    assert (c.ci95[0] < 0 < c.ci95[1]) == (c.p_value >= 0.05)
    assert c.verdict == (
        f"hybrid − twin macro-F1: {format_number(d.mean())} [{format_number(c.ci95[0])}, {format_number(c.ci95[1])}], "
        f"{format_p(c.p_value)} over 5 seeds: no detectable difference"
    )


def test_hand_computed_t_test():
    # differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt 3) = 3.4641; two-sided p from t with 2 df
    c = compare_paired([2.0, 4.0, 6.0], [1.0, 2.0, 3.0], "hybrid", "frozen", "accuracy")
    t = 2 / (1 / math.sqrt(3))
    p = 2 * (1 - (0.5 + t / (2 * math.sqrt(2 + t * t))))  # closed form of the t CDF for 2 df
    assert c.p_value == pytest.approx(p, rel=1e-9)
    assert c.p_wilcoxon == pytest.approx(0.25)  # exact: 2 of the 8 sign patterns are as extreme
    assert c.verdict.endswith(f"p = {p:.2g} over 3 seeds: no detectable difference")


def test_significant_difference_says_which_way():
    better = compare_paired([0.9, 0.8, 0.7, 0.6], [0.8, 0.71, 0.59, 0.52], "hybrid", "twin", "macro-F1")
    assert better.p_value < 0.05 and better.verdict.endswith("hybrid better (significant at 0.05)")
    worse = compare_paired([0.8, 0.71, 0.59, 0.52], [0.9, 0.8, 0.7, 0.6], "hybrid", "twin", "macro-F1")
    assert worse.verdict.endswith("hybrid worse (significant at 0.05)") and "−0.095" in worse.verdict


def test_all_zero_differences_do_not_crash():
    c = compare_paired([0.8, 0.9, 0.7], [0.8, 0.9, 0.7], "hybrid", "no_entanglement", "macro-F1")
    assert (c.difference, c.ci95, c.p_value, c.p_wilcoxon) == (0.0, (0.0, 0.0), 1.0, 1.0)
    assert c.verdict.endswith("identical on every seed")


def test_constant_nonzero_difference_has_zero_spread():
    c = compare_paired([1.0, 2.0, 3.0], [0.5, 1.5, 2.5], "hybrid", "twin", "accuracy")
    assert c.ci95 == (0.5, 0.5) and c.p_value == 0.0
    assert c.p_wilcoxon == pytest.approx(0.25)


@pytest.mark.parametrize("n", [1, 2])
def test_fewer_than_three_seeds_gives_no_test(n):
    c = compare_paired([0.9, 0.8][:n], [0.85, 0.82][:n], "hybrid", "twin", "macro-F1")
    assert c.p_value is None and c.p_wilcoxon is None
    assert (c.ci95 is None) == (n == 1)
    assert "too few seeds for a test (at least 3 needed)" in c.verdict and "p =" not in c.verdict
    assert c.as_dict()["p_value"] is None


def test_bad_pairs_are_refused():
    with pytest.raises(ValueError, match="equal-length"):
        compare_paired([0.9, 0.8], [0.9], "a", "b")
    with pytest.raises(ValueError, match="non-empty"):
        compare_paired([], [], "a", "b")


def test_number_formats():
    assert format_number(-0.0123) == "−0.012" and format_number(0.0071) == "0.007"
    assert format_number(-0.0001) == "0.000"
    assert (format_p(0.1934), format_p(0.0042), format_p(0.0004), format_p(1.0)) == ("p = 0.19", "p = 0.004", "p < 0.001", "p = 1")
