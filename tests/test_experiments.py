"""course_lib.experiments: statistics (t-intervals, paired comparisons, verdicts) and the
label-efficiency harness shared by chapters 06-09."""

import matplotlib
import numpy as np
import pytest

from course_lib import experiments

matplotlib.use("Agg")


def _pool(n_per_class=30, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    x = rng.standard_normal((len(y), 2)) + 3.0 * y[:, None]
    return x, y


def _nearest_mean(x_train, y_train, seed):
    means = np.stack([x_train[y_train == c].mean(0) for c in np.unique(y_train)])
    return lambda x: -((x[:, None, :] - means[None]) ** 2).sum(-1)   # scores (n, classes)


def _constant(x_train, y_train, seed):
    return lambda x: np.zeros(len(x), dtype=int)


def test_sample_per_class_balanced_distinct_and_seeded():
    _, y = _pool()
    idx = experiments.sample_per_class(y, 5, seed=1)
    assert idx.shape == (15,) and len(set(idx.tolist())) == 15
    assert np.bincount(y[idx]).tolist() == [5, 5, 5]
    np.testing.assert_array_equal(idx, experiments.sample_per_class(y, 5, seed=1))
    assert not np.array_equal(np.sort(idx), np.sort(experiments.sample_per_class(y, 5, seed=2)))


def test_sample_per_class_too_many_is_a_clear_error():
    _, y = _pool(n_per_class=4)
    with pytest.raises(ValueError, match="class 0 has only 4 examples, fewer than per_class=5"):
        experiments.sample_per_class(y, 5, seed=0)


def test_label_efficiency_pairs_subsets_and_summarises():
    x, y = _pool()
    x_test, y_test = _pool(seed=1)
    seen = {"nearest mean": [], "constant": []}

    def recording(name, method):
        def run(x_train, y_train, seed):
            seen[name].append((seed, x_train.tobytes(), y_train.tobytes()))
            return method(x_train, y_train, seed)
        return run

    methods = {name: recording(name, m)
               for name, m in (("nearest mean", _nearest_mean), ("constant", _constant))}
    result = experiments.label_efficiency(methods, x, y, x_test, y_test, budgets=[2, None],
                                       seeds={2: (0, 1, 2), None: (0,)}, progress=False)
    assert seen["nearest mean"] == seen["constant"]            # paired: the same subsets
    assert len({b for _, b, _ in seen["constant"]}) == 4       # different per seed and budget
    assert len(result.records) == 2 * 4
    assert result.methods == ["nearest mean", "constant"] and result.budgets == [2, None]
    mean, sd = result.mean_sd("constant", 2)
    assert mean == pytest.approx(1 / 3) and sd == 0.0
    assert result.mean_sd("nearest mean", None)[0] > 0.9
    assert result.accuracies("nearest mean", 2).shape == (3,)
    table = result.table()
    assert "| labels per class | nearest mean | constant |" in table and "| all |" in table
    assert "0.333 ± 0.000 (3)" in table
    ax = result.plot()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "all"]


def test_label_efficiency_bad_predictor_and_inputs():
    x, y = _pool()
    with pytest.raises(ValueError, match=r"class ids \(n,\) or scores"):
        experiments.label_efficiency({"bad": lambda a, b, s: (lambda z: np.zeros((len(z), 1, 1)))},
                                  x, y, x, y, budgets=[2], seeds=(0,), progress=False)
    with pytest.raises(ValueError, match="same number of samples"):
        experiments.label_efficiency({"c": _constant}, x, y[:-1], x, y, budgets=[2], progress=False)
    with pytest.raises(ValueError, match="at least one method"):
        experiments.label_efficiency({}, x, y, x, y, budgets=[2], progress=False)


# --------------------------------------------------------------------------------------------
# Statistics, against scipy and hand-computed values.
# --------------------------------------------------------------------------------------------


def test_t_quantile_matches_tables():
    # Student-t two-sided 95 % quantiles from any table: df 1, 2, 4, 7, 30.
    for df, value in [(1, 12.706), (2, 4.303), (4, 2.776), (7, 2.365), (30, 2.042)]:
        assert experiments.t_quantile(0.95, df) == pytest.approx(value, abs=1e-3)
    assert experiments.t_quantile(0.90, 4) == pytest.approx(2.132, abs=1e-3)
    with pytest.raises(ValueError, match="confidence"):
        experiments.t_quantile(1.5, 3)
    with pytest.raises(ValueError, match="df"):
        experiments.t_quantile(0.95, 0)


def test_t_interval_by_hand_and_against_scipy():
    from scipy import stats

    values = [1.0, 2.0, 3.0, 4.0, 5.0]        # mean 3, sd sqrt(2.5), n 5
    found = experiments.t_interval(values)
    half = 2.7764451 * np.sqrt(2.5) / np.sqrt(5)
    assert found.mean == 3.0 and found.n == 5 and found.sd == pytest.approx(np.sqrt(2.5))
    assert (found.low, found.high) == (pytest.approx(3 - half), pytest.approx(3 + half))
    rng = np.random.default_rng(0)
    for n in (2, 3, 8, 20):
        sample = rng.normal(0.4, 2.0, n)
        low, high = stats.t.interval(0.95, n - 1, loc=sample.mean(), scale=stats.sem(sample))
        got = experiments.t_interval(sample)
        assert got.low == pytest.approx(low) and got.high == pytest.approx(high)
    one = experiments.t_interval([0.7])
    assert one.mean == 0.7 and one.n == 1 and np.isnan(one.low) and np.isnan(one.high)
    assert one.format() == "+0.7" and not one.excludes_zero


def test_t_interval_rejects_bad_values():
    with pytest.raises(ValueError, match="non-empty 1-D"):
        experiments.t_interval([])
    with pytest.raises(ValueError, match="NaN or infinite"):
        experiments.t_interval([0.5, float("nan")])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        experiments.t_interval([[1.0, 2.0]])


def test_binomial_standard_error():
    assert experiments.binomial_se(0.5, 10_000) == pytest.approx(0.005)
    assert experiments.binomial_se(0.9, 100) == pytest.approx(0.03)
    assert experiments.binomial_se(1.0, 50) == 0.0
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        experiments.binomial_se(1.2, 10)
    with pytest.raises(ValueError, match="n"):
        experiments.binomial_se(0.5, 0)


def test_no_verdict_from_fewer_than_three_seeds():
    # A huge, perfectly consistent gain over 2 seeds still gets no verdict.
    for n in (1, 2):
        found = experiments.compare([0.9] * n, [0.1] * n)
        assert found.verdict == f"{n} seed{'' if n == 1 else 's'}: no conclusion"
        assert "clear" not in found.format() and "no conclusion" in found.format()
    assert experiments.compare([0.9, 0.8, 0.85], [0.1, 0.2, 0.1]).verdict == "clear gain"
    assert experiments.compare([0.1, 0.2, 0.1], [0.9, 0.8, 0.85]).verdict == "clear loss"
    assert experiments.compare([0.5, 0.6, 0.4], [0.5, 0.5, 0.5]).verdict == "no clear difference"


def test_compare_pairs_by_seed_and_reports_the_test_se():
    found = experiments.compare({0: 0.60, 1: 0.62, 2: 0.66, 7: 0.99}, {0: 0.50, 1: 0.50, 2: 0.55},
                                method="a", baseline="b", n_test=10_000)
    assert found.seeds == (0, 1, 2)                            # seed 7 has no partner
    np.testing.assert_allclose(found.differences, [10.0, 12.0, 11.0])
    assert found.wins == 3
    expected = experiments.t_interval([10.0, 12.0, 11.0])
    assert (found.interval.low, found.interval.high) == (pytest.approx(expected.low),
                                                         pytest.approx(expected.high))
    assert found.interval.low == pytest.approx(11 - 4.3027 / np.sqrt(3), abs=1e-4)
    # the larger of the two arms' binomial errors: b's mean 0.5167 is nearer 0.5
    assert found.test_se == pytest.approx(100 * np.sqrt(0.51667 * 0.48333 / 10_000), rel=1e-4)
    text = str(found)
    assert text.startswith("a − b: +11.0 points, 95 % CI [+8.5, +13.5], 3 seeds (higher on 3)")
    assert ": clear gain; SE of one accuracy on its 10000 examples: 0.5 points" in text
    # The same differences with a wide spread: the interval contains zero.
    wide = experiments.compare([0.60, 0.70, 0.60], [0.50, 0.50, 0.50])
    assert wide.interval.low < 0 < wide.interval.high and wide.verdict == "no clear difference"
    with pytest.raises(ValueError, match="no common seeds"):
        experiments.compare({0: 0.5}, {1: 0.5})
    with pytest.raises(ValueError, match="aligned by seed"):
        experiments.compare([0.5, 0.6], [0.5])


def _records(rows, n_test=None):
    return experiments.LabelEfficiency([
        {"method": m, "per_class": b, "seed": s, "n_train": 1, "seconds": 0.0, "accuracy": acc,
         **({"n_test": n_test} if n_test else {})}
        for m, b, s, acc in rows])


def test_label_efficiency_compare_gains_table_and_select():
    result = _records([("a", 10, 0, 0.5), ("a", 10, 1, 0.52), ("a", 10, 2, 0.56),
                       ("b", 10, 0, 0.4), ("b", 10, 1, 0.4), ("b", 10, 2, 0.45),
                       ("a", None, 0, 0.9), ("b", None, 0, 0.9)], n_test=1000)
    found = result.compare("a", "b", 10)
    np.testing.assert_allclose(found.differences, [10.0, 12.0, 11.0])
    assert found.n_test == 1000 and result.n_test == 1000
    table = result.gains_table("b")
    assert "| 10 | +11.0 [+8.5, +13.5] (3): clear gain |" in table
    assert "| all | +0.0 (1): 1 seed: no conclusion |" in table
    assert "standard error of one accuracy (1000 examples): 0.9–1.6 points" in table
    assert result.select(["a"], [10]).accuracies("a", 10).tolist() == [0.5, 0.52, 0.56]
    assert result.select(["a"], [10]).methods == ["a"]
    with pytest.raises(ValueError, match="no common seeds .* at per_class=10"):
        result.compare("a", "c", 10)


def test_describe_gain_states_every_budget_with_interval_and_verdict():
    result = _records([("a", 10, 0, 0.6), ("a", 10, 1, 0.7), ("a", 10, 2, 0.65),
                       ("b", 10, 0, 0.3), ("b", 10, 1, 0.35), ("b", 10, 2, 0.3),
                       ("a", None, 0, 0.80), ("a", None, 1, 0.81),
                       ("b", None, 0, 0.80), ("b", None, 1, 0.82)])
    text = experiments.describe_gain(result, "a", "b")
    assert text.startswith("a − b: 10 labels per class +33.3 [")
    assert "(3 seeds): clear gain" in text
    assert "all labels per class -0.5 [" in text and "(2 seeds): 2 seeds: no conclusion" in text
    assert "clear" not in text.split(";")[1]
    with pytest.raises(ValueError, match="no budget"):
        experiments.describe_gain(result, "a", "c")


def test_paired_test_difference_by_hand():
    a = np.array([1, 1, 0, 1, 0, 1, 1, 0], dtype=bool)
    b = np.array([1, 0, 0, 1, 1, 1, 0, 0], dtype=bool)
    d = a.astype(float) - b                      # [0, 1, 0, 0, -1, 0, 1, 0]
    result = experiments.paired_test_difference(a, b)
    se = np.sqrt(np.sum((d - d.mean()) ** 2) / 7 / 8)
    assert result.accuracy_a == 5 / 8 and result.accuracy_b == 4 / 8
    assert result.difference == pytest.approx(1 / 8) and result.se == pytest.approx(se)
    assert result.low == pytest.approx(1 / 8 - 1.959964 * se, abs=1e-6)
    assert result.high == pytest.approx(1 / 8 + 1.959964 * se, abs=1e-6)
    assert result.n == 8 and result.disagree == 3
    assert result.format().startswith("+12.5 points, SE")
    same = experiments.paired_test_difference(a, a)
    assert same.difference == 0 and same.se == 0 and same.disagree == 0


def test_paired_test_difference_refuses_bad_input():
    with pytest.raises(ValueError, match="True/False"):
        experiments.paired_test_difference([0.5, 1.0], [1, 0])
    with pytest.raises(ValueError, match="at least 2"):
        experiments.paired_test_difference([1], [0])
    with pytest.raises(ValueError, match="correct_a"):
        experiments.paired_test_difference([1, 0, 1], [1, 0])
