"""Chapter 07 helpers: transfer learning and fine-tuning (and the label-efficiency measurement
that chapter 08 reuses).

Label efficiency: how target test accuracy grows with the number of labelled examples per class,
for several ways of training (from scratch, feature extraction, fine-tuning, ...). Every method
sees the *same* labelled subset for a given budget and seed (a paired comparison), and each point
is the mean ± sd over seeds:

    methods = {"from scratch": train_scratch, "fine-tuning": train_finetune}
    result = label_efficiency(methods, x_pool, y_pool, x_test, y_test, budgets=[10, 100, None])
    print(result.table()); result.plot()

A method is ``method(x_train, y_train, seed) -> predictor``, where ``predictor(x)`` returns class
ids ``(n,)`` or scores ``(n, classes)``. It must choose anything it tunes on its own training data
(e.g. a validation split of it); it never sees the test set.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from course_lib.nn import checks

Predictor = Callable[[np.ndarray], np.ndarray]
Method = Callable[[np.ndarray, np.ndarray, int], Predictor]
Budget = int | None  # labelled examples per class; None: the whole pool


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


def _budget_label(budget: Budget) -> str:
    return "all" if budget is None else str(budget)


@dataclass
class LabelEfficiency:
    """The measurements of :func:`label_efficiency`: one record per (method, budget, seed) with
    keys method, per_class (None = all), seed, n_train, accuracy, seconds."""

    records: list[dict] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(r["method"] for r in self.records))

    @property
    def budgets(self) -> list[Budget]:
        found = list(dict.fromkeys(r["per_class"] for r in self.records))
        return sorted(found, key=lambda b: np.inf if b is None else b)

    def accuracies(self, method: str, per_class: Budget) -> np.ndarray:
        """Accuracy of each seed, in seed order."""
        rows = sorted((r for r in self.records
                       if r["method"] == method and r["per_class"] == per_class),
                      key=lambda r: r["seed"])
        return np.array([r["accuracy"] for r in rows])

    def mean_sd(self, method: str, per_class: Budget) -> tuple[float, float]:
        """Mean and sample standard deviation (ddof=1; 0 for a single seed) over seeds."""
        acc = self.accuracies(method, per_class)
        if acc.size == 0:
            raise ValueError(f"no results for method {method!r} at per_class={per_class!r}")
        return float(acc.mean()), float(acc.std(ddof=1)) if acc.size > 1 else 0.0

    def summary(self) -> list[dict]:
        """One row per (method, budget): method, per_class, mean, sd, seeds, seconds (mean)."""
        rows = []
        for method in self.methods:
            for budget in self.budgets:
                mine = [r for r in self.records
                        if r["method"] == method and r["per_class"] == budget]
                if mine:
                    mean, sd = self.mean_sd(method, budget)
                    rows.append({"method": method, "per_class": budget, "mean": mean, "sd": sd,
                                 "seeds": len(mine),
                                 "seconds": float(np.mean([r["seconds"] for r in mine]))})
        return rows

    def table(self, digits: int = 3) -> str:
        """A Markdown table: one row per budget, one column per method, "mean ± sd (n seeds)"."""
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
            lines.append(f"| {_budget_label(budget)} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def plot(self, ax=None, title: str = "label efficiency", pool_per_class: int | None = None):
        """Accuracy against labels per class (log x axis), mean ± sd error bars; returns the axes.
        ``pool_per_class``: where to draw the "all" budget on the x axis (default: 2x the largest)."""
        from course_lib.plotting import plot_label_efficiency

        return plot_label_efficiency(self, ax, title=title, pool_per_class=pool_per_class)

    def __add__(self, other: LabelEfficiency) -> LabelEfficiency:
        return LabelEfficiency(self.records + other.records)


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
            raise ValueError(f"no seeds given for budget {_budget_label(budget)}")
        for seed in budget_seeds:
            subset = (np.arange(len(y_pool)) if budget is None
                      else sample_per_class(y_pool, budget, seed))
            plan.append((budget, int(seed), subset))

    from tqdm import tqdm

    bar = tqdm(total=len(plan) * len(methods), desc="label efficiency", file=sys.stdout,
               disable=not progress)
    result = LabelEfficiency()
    try:
        for budget, seed, subset in plan:
            x_train, y_train = x_pool[subset], y_pool[subset]
            for name, method in methods.items():
                bar.set_postfix_str(f"{name}, {_budget_label(budget)}/class, seed {seed}")
                start = time.perf_counter()
                predictor = method(x_train, y_train, seed)
                seconds = time.perf_counter() - start
                predicted = _predicted_labels(predictor(x_test), len(y_test))
                result.records.append({
                    "method": name, "per_class": budget, "seed": seed, "n_train": len(subset),
                    "accuracy": float(np.mean(predicted == y_test)), "seconds": seconds,
                })
                bar.update()
    finally:
        bar.close()
    return result
