"""Small plotting helpers shared by the chapters (matplotlib; figure style from ``setup()``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _axes(ax=None, figsize: tuple[float, float] = (6.4, 3.6)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_curves(
    curves: dict[str, Sequence[float]],
    ax=None,
    *,
    x: np.ndarray | None = None,
    xlabel: str = "epoch",
    ylabel: str = "loss",
    title: str | None = None,
    logy: bool = False,
):
    """One line per entry of ``curves`` (name -> values); returns the axes."""
    ax = _axes(ax)
    for name, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        xs = np.arange(1, len(values) + 1) if x is None else x
        ax.plot(xs, values, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if len(curves) > 1:
        ax.legend()
    return ax


def plot_paths_on_contour(
    loss: Callable[[np.ndarray], np.ndarray],
    paths: dict[str, np.ndarray],
    ax=None,
    *,
    xlim: tuple[float, float] = (-4.5, 1.5),
    ylim: tuple[float, float] = (-2.0, 2.0),
    title: str | None = None,
):
    """Contours of ``loss`` (maps (..., 2) -> (...)) with optimizer paths (name -> (steps, 2))."""
    ax = _axes(ax)
    g1, g2 = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))
    values = loss(np.stack([g1, g2], axis=-1))
    ax.contour(g1, g2, values, levels=np.geomspace(0.01, values.max(), 15), colors="0.7",
               linewidths=0.7)
    for name, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], ".-", markersize=3, linewidth=1, label=name)
    ax.plot(0, 0, "k*", markersize=10)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    ax.grid(False)
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return ax


def image_grid(images: np.ndarray, titles: Sequence[str], ncols: int = 8, size: float = 1.1):
    """Grayscale images (n, h, w) in a grid with one short title each; returns the figure."""
    import matplotlib.pyplot as plt

    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size + 0.25)))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap="gray_r")
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(cm: np.ndarray, ax=None, *, labels: Sequence[str] | None = None,
                          title: str = "confusion matrix"):
    """Counts (classes, classes), rows = true class, columns = predicted class; returns the axes."""
    ax = _axes(ax, figsize=(4.8, 4.2))
    cm = np.asarray(cm)
    k = cm.shape[0]
    labels = [str(i) for i in range(k)] if labels is None else list(labels)
    ax.imshow(cm, cmap="Blues")
    for i in range(k):
        for j in range(k):
            color = "white" if cm[i, j] > cm.max() / 2 else "black"
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(k), labels)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    ax.grid(False)
    return ax


def plot_label_efficiency(result, ax=None, *, title: str = "label efficiency",
                          pool_per_class: int | None = None):
    """Accuracy against labelled examples per class, one line with mean ± sd error bars per
    method, log x axis; the "all" budget is drawn at ``pool_per_class`` (default: twice the
    largest numeric budget). ``result``: a ``course_lib.experiments.LabelEfficiency``."""
    ax = _axes(ax)
    numeric = [b for b in result.budgets if b is not None]
    where_all = pool_per_class or (2 * max(numeric) if numeric else 1)
    positions = {b: (where_all if b is None else b) for b in result.budgets}
    for method in result.methods:
        budgets = [b for b in result.budgets if result.accuracies(method, b).size]
        stats = [result.mean_sd(method, b) for b in budgets]
        ax.errorbar([positions[b] for b in budgets], [m for m, _ in stats],
                    yerr=[s for _, s in stats], marker="o", capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xticks([positions[b] for b in result.budgets])
    ax.set_xticklabels(["all" if b is None else str(b) for b in result.budgets])
    ax.minorticks_off()
    ax.set_xlabel("labelled examples per class")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.legend()
    return ax
