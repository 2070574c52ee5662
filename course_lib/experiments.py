"""The course's experiment statistics (chapters 06-09): paired comparisons over seeds, t-based
95 % intervals, the test set's own standard error, verdicts, and the label-efficiency harness.

Rules every chapter follows (and that these functions enforce):

- **Paired.** Two methods are compared on the *same* seeds (the same labelled subset, the same
  initialisation seed where it applies): the statistic is the per-seed difference, whose spread
  is usually much smaller than either method's own.
- **A t-based 95 % interval** of the mean difference, ``mean ± t(0.975, n-1) · sd / sqrt(n)``
  (Student's t with ``n - 1`` degrees of freedom), not "mean minus one sd".
- **No verdict from fewer than 3 seeds.** With 1 or 2 seeds :func:`verdict` says
  "n seeds: no conclusion"; from 3 seeds on it says "clear gain" / "clear loss" when the
  interval excludes zero and "no clear difference" when it does not.
- **The test set's own noise.** Every seed is scored on the same test set, so the interval over
  seeds does not contain the test set's sampling error: an accuracy ``p`` measured on ``m``
  examples has a binomial standard error ``sqrt(p (1 - p) / m)`` of its own, which a
  comparison prints beside the difference. Two trained models scored on the same test examples
  are compared by :func:`paired_test_difference` (the per-example paired standard error).

Label efficiency (chapters 07-09): how test accuracy grows with the number of labelled examples
per class, for several ways of training. Every method sees the *same* labelled subset for a
given budget and seed:

    methods = {"from scratch": train_scratch, "fine-tuning": train_finetune}
    result = label_efficiency(methods, x_pool, y_pool, x_test, y_test, budgets=[10, 100, None])
    print(result.table()); print(result.gains_table("from scratch")); result.plot()

A method is ``method(x_train, y_train, seed) -> predictor``, where ``predictor(x)`` returns class
ids ``(n,)`` or scores ``(n, classes)``. It must choose anything it tunes on its own training data
(e.g. a validation split of it); it never sees the test set.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from course_lib.nn import checks

Predictor = Callable[[np.ndarray], np.ndarray]
Method = Callable[[np.ndarray, np.ndarray, int], Predictor]
Budget = int | None  # labelled examples per class; None: the whole pool

MIN_SEEDS_FOR_VERDICT = 3
CONFIDENCE = 0.95


# --------------------------------------------------------------------------------------------
# Statistics.
# --------------------------------------------------------------------------------------------


def _values(name: str, values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D sequence of numbers, got shape "
                         f"{array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` holds NaN or infinite values: {array.tolist()}")
    return array


def t_quantile(confidence: float, df: int) -> float:
    """The two-sided Student-t quantile ``t((1 + confidence) / 2, df)`` (12.71 for 95 % and
    1 degree of freedom, 4.30 for 2, 2.78 for 4; 1.96 in the limit)."""
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be between 0 and 1, got {confidence!r}")
    if int(df) < 1:
        raise ValueError(f"`df` must be at least 1, got {df!r}")
    return float(stats.t.ppf(0.5 + confidence / 2, int(df)))


@dataclass(frozen=True)
class Interval:
    """The mean of ``n`` values and its t-based confidence interval ``[low, high]``.

    With one value the interval is undefined: ``low``, ``high`` and ``sd`` are NaN.
    """

    mean: float
    low: float
    high: float
    sd: float
    n: int
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    @property
    def excludes_zero(self) -> bool:
        return self.n >= 2 and (self.low > 0 or self.high < 0)

    def format(self, digits: int = 1, unit: str = "") -> str:
        """``+6.0 [+2.1, +9.9]`` (signed mean and interval); ``+6.0`` alone for one value."""
        text = f"{self.mean:+.{digits}f}{unit}"
        if self.n >= 2:
            text += f" [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"
        return text


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean of ``values`` (n,) with the interval ``mean ± t((1+confidence)/2, n-1) sd/sqrt(n)``
    (``sd`` with ddof=1). One value gives NaN bounds (no interval from one seed)."""
    values = _values("values", values)
    mean, n = float(values.mean()), int(values.size)
    if n < 2:
        return Interval(mean, math.nan, math.nan, math.nan, n, confidence)
    sd = float(values.std(ddof=1))
    half = t_quantile(confidence, n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, sd, n, confidence)


def binomial_se(accuracy: float, n: int) -> float:
    """The standard error ``sqrt(p (1 - p) / n)`` of an accuracy ``p`` measured on ``n``
    independent test examples (the test set's own sampling noise)."""
    n = checks.check_positive_int("n", n)
    if not (np.isfinite(accuracy) and 0.0 <= accuracy <= 1.0):
        raise ValueError(f"`accuracy` must be a number in [0, 1], got {accuracy!r}")
    return math.sqrt(accuracy * (1.0 - accuracy) / n)


@dataclass(frozen=True)
class PairedTestDifference:
    """Two models' accuracies on the *same* test examples and their paired difference.

    ``difference``: accuracy of a minus accuracy of b; ``se``: its standard error over the test
    examples, ``sd(c_a - c_b) / sqrt(n)`` with ``c`` the 0/1 correctness per example (paired:
    examples both get right or both get wrong add no noise); ``low``, ``high``: the normal
    95 % interval ``difference ± 1.96 se``; ``disagree``: examples on which exactly one is right.
    This is the test set's own noise for one pair of trained models, not the seed-to-seed noise
    of training them (:func:`compare`)."""

    accuracy_a: float
    accuracy_b: float
    difference: float
    se: float
    low: float
    high: float
    n: int
    disagree: int

    def format(self, scale: float = 100.0, digits: int = 1) -> str:
        """E.g. ``+0.3 points, SE 0.4, 95 % interval [-0.5, +1.1] over 10000 test examples
        (they disagree on 1043)``."""
        return (f"{scale * self.difference:+.{digits}f} points, SE {scale * self.se:.{digits}f}, "
                f"95 % interval [{scale * self.low:+.{digits}f}, {scale * self.high:+.{digits}f}] "
                f"over {self.n} test examples (they disagree on {self.disagree})")


def paired_test_difference(correct_a, correct_b) -> PairedTestDifference:
    """The paired difference of two models on one test set. correct_a, correct_b: (n,) bools
    (or 0/1), whether each model got each test example right, aligned by example."""
    a = np.asarray(correct_a)
    b = np.asarray(correct_b)
    for name, c in (("correct_a", a), ("correct_b", b)):
        if c.ndim != 1 or c.size < 2:
            raise ValueError(f"`{name}` must be a 1-D array of at least 2 per-example results, "
                             f"got shape {c.shape}")
        if not np.isin(c, (0, 1)).all():
            raise ValueError(f"`{name}` must hold True/False (or 0/1) per test example")
    checks.check_same_length("correct_a", a, "correct_b", b)
    a, b = a.astype(np.float64), b.astype(np.float64)
    d = a - b
    n = int(d.size)
    mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(n))
    z = float(_normal_quantile(CONFIDENCE))
    return PairedTestDifference(float(a.mean()), float(b.mean()), mean, se, mean - z * se,
                             mean + z * se, n, int(np.sum(d != 0)))


def _normal_quantile(confidence: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(0.5 + confidence / 2))


def verdict(interval: Interval, min_seeds: int = MIN_SEEDS_FOR_VERDICT) -> str:
    """The verdict on a paired difference (positive = gain): "n seeds: no conclusion" under
    ``min_seeds`` seeds, else "clear gain" / "clear loss" when the interval excludes zero and
    "no clear difference" when it contains it."""
    if interval.n < min_seeds:
        return f"{interval.n} seed{'' if interval.n == 1 else 's'}: no conclusion"
    if interval.low > 0:
        return "clear gain"
    if interval.high < 0:
        return "clear loss"
    return "no clear difference"


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of ``method`` against ``baseline`` over common ``seeds``.

    ``differences``: method minus baseline per seed, in points (accuracy × ``scale``);
    ``interval``: their mean with its t-based interval; ``test_se``: the binomial standard
    error of one accuracy on the test set, in the same units (None when the test size is
    unknown), the larger of the two methods' mean accuracies' errors.
    """

    method: str
    baseline: str
    seeds: tuple[int, ...]
    differences: np.ndarray
    interval: Interval
    test_se: float | None = None
    n_test: int | None = None

    @property
    def wins(self) -> int:
        """Seeds on which ``method`` scored higher than ``baseline``."""
        return int(np.sum(self.differences > 0))

    @property
    def verdict(self) -> str:
        return verdict(self.interval)

    def format(self, digits: int = 1) -> str:
        """E.g. ``+6.0 points, 95 % CI [+2.1, +9.9], 8 seeds (higher on 7): clear gain; SE of one
        accuracy on its 10000 examples: 0.5 points``."""
        n = self.interval.n
        text = f"{self.interval.mean:+.{digits}f} points"
        if n >= 2:
            text += (f", {round(100 * self.interval.confidence)} % CI "
                     f"[{self.interval.low:+.{digits}f}, {self.interval.high:+.{digits}f}]")
        text += f", {n} seed{'' if n == 1 else 's'} (higher on {self.wins}): {self.verdict}"
        if self.test_se is not None:
            text += (f"; SE of one accuracy on its {self.n_test} examples: "
                     f"{self.test_se:.{digits}f} points")
        return text

    def __str__(self) -> str:
        return f"{self.method} − {self.baseline}: {self.format()}"


def compare(method_scores: Mapping[int, float] | Sequence[float],
            baseline_scores: Mapping[int, float] | Sequence[float], *,
            method: str = "method", baseline: str = "baseline", n_test: int | None = None,
            scale: float = 100.0, confidence: float = CONFIDENCE) -> Comparison:
    """Paired comparison of two methods' accuracies (in [0, 1]) over the seeds both ran.

    ``method_scores`` and ``baseline_scores``: mappings seed -> accuracy (only common seeds are
    paired), or two sequences of the same length, aligned by position (position = seed).
    ``n_test``: the size of the set the accuracies were measured on (for its binomial standard
    error). ``scale``: 100 reports points. Raises ``ValueError`` when no seed is common.
    """
    def as_mapping(name, scores):
        if isinstance(scores, Mapping):
            return {int(k): float(v) for k, v in scores.items()}
        return dict(enumerate(_values(name, scores).tolist()))

    mine, theirs = as_mapping("method_scores", method_scores), as_mapping("baseline_scores",
                                                                          baseline_scores)
    if not isinstance(method_scores, Mapping) and not isinstance(baseline_scores, Mapping) \
            and len(mine) != len(theirs):
        raise ValueError(f"the two score sequences must be aligned by seed, got {len(mine)} and "
                         f"{len(theirs)} values")
    seeds = tuple(sorted(set(mine) & set(theirs)))
    if not seeds:
        raise ValueError(f"no common seeds for {method!r} and {baseline!r}")
    a = _values("method_scores", [mine[s] for s in seeds])
    b = _values("baseline_scores", [theirs[s] for s in seeds])
    differences = scale * (a - b)
    test_se = None
    if n_test is not None:
        test_se = scale * max(binomial_se(float(np.clip(a.mean(), 0, 1)), n_test),
                              binomial_se(float(np.clip(b.mean(), 0, 1)), n_test))
    return Comparison(method, baseline, seeds, differences,
                      t_interval(differences, confidence), test_se, n_test)


# --------------------------------------------------------------------------------------------
# Label efficiency: the same labelled subsets for every method.
# --------------------------------------------------------------------------------------------


def sample_per_class(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` examples of every class present in ``y`` (y: (n,) int labels),
    drawn without replacement with ``np.random.default_rng(seed)``; returned in random order."""
    y = checks.as_index_array("y", y, ndim=1)
    per_class = checks.check_positive_int("per_class", per_class)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(y):
        where = np.flatnonzero(y == label)
        if len(where) < per_class:
            raise ValueError(
                f"class {int(label)} has only {len(where)} examples, fewer than per_class={per_class}"
            )
        chosen.append(rng.choice(where, size=per_class, replace=False))
    return rng.permutation(np.concatenate(chosen))


def budget_label(budget: Budget) -> str:
    """"all" for the whole pool, else the number of labels per class."""
    return "all" if budget is None else str(budget)


@dataclass
class LabelEfficiency:
    """The measurements of :func:`label_efficiency`: one record per (method, budget, seed) with
    keys method, per_class (None = all), seed, n_train, accuracy, seconds, and n_test (the
    size of the test set; optional in hand-made records)."""

    records: list[dict] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(r["method"] for r in self.records))

    @property
    def budgets(self) -> list[Budget]:
        found = list(dict.fromkeys(r["per_class"] for r in self.records))
        return sorted(found, key=lambda b: np.inf if b is None else b)

    def _rows(self, method: str, per_class: Budget) -> list[dict]:
        return sorted((r for r in self.records
                       if r["method"] == method and r["per_class"] == per_class),
                      key=lambda r: r["seed"])

    def accuracies(self, method: str, per_class: Budget) -> np.ndarray:
        """Accuracy of each seed, in seed order."""
        return np.array([r["accuracy"] for r in self._rows(method, per_class)])

    def scores(self, method: str, per_class: Budget) -> dict[int, float]:
        """seed -> accuracy of ``method`` at ``per_class``."""
        return {r["seed"]: r["accuracy"] for r in self._rows(method, per_class)}

    def mean_sd(self, method: str, per_class: Budget) -> tuple[float, float]:
        """Mean and sample standard deviation (ddof=1; 0 for a single seed) over seeds."""
        acc = self.accuracies(method, per_class)
        if acc.size == 0:
            raise ValueError(f"no results for method {method!r} at per_class={per_class!r}")
        return float(acc.mean()), float(acc.std(ddof=1)) if acc.size > 1 else 0.0

    @property
    def n_test(self) -> int | None:
        """The test set's size (None when the records do not say, or disagree)."""
        sizes = {r.get("n_test") for r in self.records}
        return sizes.pop() if len(sizes) == 1 and None not in sizes else None

    def summary(self) -> list[dict]:
        """One row per (method, budget): method, per_class, mean, sd, seeds, seconds (mean)."""
        rows = []
        for method in self.methods:
            for budget in self.budgets:
                mine = self._rows(method, budget)
                if mine:
                    mean, sd = self.mean_sd(method, budget)
                    rows.append({"method": method, "per_class": budget, "mean": mean, "sd": sd,
                                 "seeds": len(mine),
                                 "seconds": float(np.mean([r["seconds"] for r in mine]))})
        return rows

    def table(self, digits: int = 3) -> str:
        """A Markdown table: one row per budget, one column per method, "mean ± sd (n seeds)"
        (the sd shows the spread over seeds; :meth:`gains_table` gives the intervals)."""
        header = "| labels per class | " + " | ".join(self.methods) + " |"
        lines = [header, "|---" * (len(self.methods) + 1) + "|"]
        for budget in self.budgets:
            cells = []
            for method in self.methods:
                acc = self.accuracies(method, budget)
                if acc.size == 0:
                    cells.append("—")
                    continue
                mean, sd = self.mean_sd(method, budget)
                cells.append(f"{mean:.{digits}f} ± {sd:.{digits}f} ({acc.size})")
            lines.append(f"| {budget_label(budget)} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def plot(self, ax=None, title: str = "label efficiency", pool_per_class: int | None = None):
        """Accuracy against labels per class (log x axis), mean ± sd error bars; returns the axes.
        ``pool_per_class``: where to draw the "all" budget on the x axis (default: 2x the largest)."""
        from course_lib.plotting import plot_label_efficiency

        return plot_label_efficiency(self, ax, title=title, pool_per_class=pool_per_class)

    def select(self, methods: Sequence[str] | None = None,
               budgets: Sequence[Budget] | None = None) -> LabelEfficiency:
        """The records of some methods and budgets (all when None), in their order."""
        return LabelEfficiency([r for r in self.records
                                if (methods is None or r["method"] in methods)
                                and (budgets is None or r["per_class"] in budgets)])

    def compare(self, method: str, baseline: str, per_class: Budget) -> Comparison:
        """The paired :class:`Comparison` of ``method`` against ``baseline`` at ``per_class``
        over the seeds both ran (the same labelled subsets), in percentage points."""
        try:
            return compare(self.scores(method, per_class), self.scores(baseline, per_class),
                           method=method, baseline=baseline, n_test=self.n_test)
        except ValueError as error:
            raise ValueError(f"{error} at per_class={per_class!r}") from None

    def gains_table(self, baseline: str, digits: int = 1) -> str:
        """A Markdown table of every other method's paired gain over ``baseline`` in points:
        "mean [95 % interval] (n)" and the verdict; under 3 seeds "(n seeds: no conclusion)".
        A line below the table gives the test set's own standard error."""
        others = [m for m in self.methods if m != baseline]
        lines = ["| labels per class | " + " | ".join(f"{m} − {baseline}" for m in others) + " |",
                 "|---" * (len(others) + 1) + "|"]
        for budget in self.budgets:
            cells = []
            for method in others:
                try:
                    found = self.compare(method, baseline, budget)
                except ValueError:
                    cells.append("—")
                    continue
                cells.append(f"{found.interval.format(digits)} ({found.interval.n}): "
                             f"{found.verdict}")
            lines.append(f"| {budget_label(budget)} | " + " | ".join(cells) + " |")
        n_test = self.n_test
        if n_test:
            errors = [100 * binomial_se(float(np.clip(r["accuracy"], 0, 1)), n_test)
                      for r in self.records]
            low, high = f"{min(errors):.{digits}f}", f"{max(errors):.{digits}f}"
            lines += ["", f"Points, method minus {baseline}, paired over seeds, "
                          f"{round(100 * CONFIDENCE)} % t-interval. The test set's own "
                          f"standard error of one accuracy ({n_test} examples): "
                          f"{low if low == high else f'{low}–{high}'} points."]
        return "\n".join(lines)

    def __add__(self, other: LabelEfficiency) -> LabelEfficiency:
        return LabelEfficiency(self.records + other.records)


def describe_gain(result: LabelEfficiency, method: str, baseline: str) -> str:
    """One sentence, computed from ``result``: ``method``'s paired gain over ``baseline`` at every
    budget both ran, with its 95 % interval, seed count and verdict (no verdict under 3 seeds)."""
    parts = []
    for budget in result.budgets:
        try:
            found = result.compare(method, baseline, budget)
        except ValueError:
            continue
        parts.append(f"{budget_label(budget)} labels per class {found.interval.format()} points "
                     f"({found.interval.n} seed{'' if found.interval.n == 1 else 's'}): "
                     f"{found.verdict}")
    if not parts:
        raise ValueError(f"no budget where both {method!r} and {baseline!r} ran")
    return f"{method} − {baseline}: " + "; ".join(parts) + "."


def _predicted_labels(predictions: np.ndarray, n: int) -> np.ndarray:
    predictions = np.asarray(predictions)
    if predictions.ndim == 2:
        predictions = predictions.argmax(axis=1)
    if predictions.shape != (n,):
        raise ValueError(
            f"a predictor must return class ids (n,) or scores (n, classes) for n={n} inputs, "
            f"got shape {predictions.shape}"
        )
    return predictions


def label_efficiency(
    methods: Mapping[str, Method],
    x_pool: np.ndarray,
    y_pool: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    budgets: Sequence[Budget],
    seeds: Sequence[int] | Mapping[Budget, Sequence[int]] = (0, 1, 2),
    progress: bool = True,
) -> LabelEfficiency:
    """Train every method on ``per_class`` labelled examples per class drawn from the pool, for
    every budget and seed, and measure its accuracy on the test set.

    x_pool: (n, ...) inputs with y_pool: (n,) labels (the labelled data one may draw from);
    x_test: (m, ...) with y_test: (m,) (used only to score the returned predictors).
    budgets: labels per class, ``None`` for the whole pool. seeds: the same seeds for every
    budget, or a mapping budget -> seeds (e.g. fewer seeds for the expensive "all").
    Budget ``b`` and seed ``s`` give every method the same subset (``sample_per_class``);
    the seed is also passed to the method for its own initialisation and shuffling.
    """
    if not methods:
        raise ValueError("`methods` must name at least one method")
    y_pool = checks.as_index_array("y_pool", y_pool, ndim=1)
    y_test = checks.as_index_array("y_test", y_test, ndim=1)
    checks.check_same_length("x_pool", np.asarray(x_pool), "y_pool", y_pool)
    checks.check_same_length("x_test", np.asarray(x_test), "y_test", y_test)
    if not budgets:
        raise ValueError("`budgets` must hold at least one budget (labels per class, or None)")
    plan = []
    for budget in budgets:
        budget_seeds = seeds.get(budget, ()) if isinstance(seeds, Mapping) else seeds
        if not budget_seeds:
            raise ValueError(f"no seeds given for budget {budget_label(budget)}")
        for seed in budget_seeds:
            subset = (np.arange(len(y_pool)) if budget is None
                      else sample_per_class(y_pool, budget, seed))
            plan.append((budget, int(seed), subset))

    from course_lib.progress import progress_bar

    bar = progress_bar(total=len(plan) * len(methods), desc="label efficiency",
                       disable=not progress)
    result = LabelEfficiency()
    try:
        for budget, seed, subset in plan:
            x_train, y_train = x_pool[subset], y_pool[subset]
            for name, method in methods.items():
                bar.set_postfix_str(f"{name}, {budget_label(budget)}/class, seed {seed}")
                start = time.perf_counter()
                predictor = method(x_train, y_train, seed)
                seconds = time.perf_counter() - start
                predicted = _predicted_labels(predictor(x_test), len(y_test))
                result.records.append({
                    "method": name, "per_class": budget, "seed": seed, "n_train": len(subset),
                    "accuracy": float(np.mean(predicted == y_test)), "seconds": seconds,
                    "n_test": int(len(y_test)),
                })
                bar.update()
    finally:
        bar.close()
    return result

