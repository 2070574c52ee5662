"""course_lib.transfer.label_efficiency and sample_per_class (shared by chapters 07 and 08)."""

import matplotlib
import numpy as np
import pytest

from course_lib import transfer

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
    idx = transfer.sample_per_class(y, 5, seed=1)
    assert idx.shape == (15,) and len(set(idx.tolist())) == 15
    assert np.bincount(y[idx]).tolist() == [5, 5, 5]
    np.testing.assert_array_equal(idx, transfer.sample_per_class(y, 5, seed=1))
    assert not np.array_equal(np.sort(idx), np.sort(transfer.sample_per_class(y, 5, seed=2)))


def test_sample_per_class_too_many_is_a_clear_error():
    _, y = _pool(n_per_class=4)
    with pytest.raises(ValueError, match="class 0 has only 4 examples, fewer than per_class=5"):
        transfer.sample_per_class(y, 5, seed=0)


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
    result = transfer.label_efficiency(methods, x, y, x_test, y_test, budgets=[2, None],
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
        transfer.label_efficiency({"bad": lambda a, b, s: (lambda z: np.zeros((len(z), 1, 1)))},
                                  x, y, x, y, budgets=[2], seeds=(0,), progress=False)
    with pytest.raises(ValueError, match="same number of samples"):
        transfer.label_efficiency({"c": _constant}, x, y[:-1], x, y, budgets=[2], progress=False)
    with pytest.raises(ValueError, match="at least one method"):
        transfer.label_efficiency({}, x, y, x, y, budgets=[2], progress=False)
