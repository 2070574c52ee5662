"""Held-out data for checks that judge a result: the rule, and helpers that make it easy to follow.

**The rule.** A check that judges a *result* (a trained model's accuracy, a loss that must go
down) instead of comparing with the reference must not be passable by code that does no work:

1. The check function (it runs in the sandboxed child, beside the student's code) calls the
   student's code and returns what that code *produced*, as plain data: the trained parameters
   or weights as arrays, the loss history. Never only predictions or scores the student's code
   could copy from files it can read (the course data and samples are readable by the child).
2. The check's ``judge(student, reference)`` (it runs in the grader, never in the child) evaluates
   those parameters **itself**, with its own code (not the student's ``predict``), on held-out
   inputs that are never sent to the child: drawn or generated in the judge, at judging time,
   with :func:`fresh_rng` (unknown to the child: in instructor grading derived from the run's
   secret seed, so ``--seed`` reproduces it; otherwise from the operating system), from the same
   distribution as the training data the check gave the child. The training data itself is
   drawn with the check's ``rng`` (fresh inputs in every instructor grading run), and whatever
   the judge needs of it is read from the *reference's* output (the grader's own run of the
   check), never from the student's.
3. The judge checks shapes exactly (a parameter of the wrong shape is a failure with a reason,
   never broadcast) and that values are finite, and its reason states the measured numbers.
4. The exercise's tests add hostile submissions for the no-work cheats: untrained parameters
   with a made-up falling loss history, a ``predict`` that looks labels up, zeros, outputs of
   the wrong shape (``tests/exercises/exercise_helpers.assert_judges_need_work`` runs the generic
   ones).

Example (``course_lib/grading/checks/ex02_mlp_from_scratch.py`` follows it)::

    def _judge(student, reference):
        rng = heldout.fresh_rng()                      # in the grader, at judging time
        x, y = heldout.noisy_subset(rng, x_pool, y_pool, n=500)
        accuracy = np.mean(my_own_forward(x, student["params"]).argmax(1) == y)
        return accuracy >= 0.85, f"held-out accuracy {accuracy:.3f} (need 0.85)"

    @check(points=3, judge=_judge)
    def training_reaches_accuracy(module, rng):
        params, history = module.train(x_train, y_train, epochs=10, seed=0)
        return {"params": params, "history": history}
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import secrets
from collections.abc import Iterator

import numpy as np

CHILD_MARKER = "COURSE_GRADER_MARKER"  # set in the sandboxed child's environment only
_SEEDS: contextvars.ContextVar[np.random.SeedSequence | None] = contextvars.ContextVar(
    "course_heldout_seeds", default=None)


def fresh_rng() -> np.random.Generator:
    """A generator for held-out data the child cannot predict. Inside :func:`seeded` with a
    seed (the grader does this for judges in instructor grading) the generators come, one after
    the other, from that seed, so a run seed reproduces them; otherwise from the operating
    system's entropy. Only for judges; raises ``RuntimeError`` when called in the sandboxed
    child (a check function), where the student's code could see what it draws."""
    if CHILD_MARKER in os.environ:
        raise RuntimeError("held-out data must be drawn in the check's judge (in the grader), "
                           "never in the check function, which runs beside the student's code")
    seeds = _SEEDS.get()
    if seeds is not None:
        return np.random.default_rng(seeds.spawn(1)[0])
    return np.random.default_rng(secrets.randbits(128))


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Within the block (in this thread), :func:`fresh_rng` derives its generators from
    ``seed``; ``None`` leaves it on the operating system's entropy."""
    token = _SEEDS.set(None if seed is None else np.random.SeedSequence(seed))
    try:
        yield
    finally:
        _SEEDS.reset(token)


def noisy_subset(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, n: int | None = None,
                 noise: float = 0.05, low: float = 0.0,
                 high: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of ``(x, y)`` picked by ``rng`` (all rows, shuffled, when ``n`` is None), each
    with fresh Gaussian noise of standard deviation ``noise`` added and clipped to
    ``[low, high]``: inputs that exist in no file the child can read.

    x: (rows, ...) floats; y: (rows,) labels. Returns (x_held_out, y_held_out) as float64 and
    int64 arrays with ``n`` (or ``rows``) rows.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x and y need the same number of rows, got x {x.shape} and y {y.shape}")
    count = len(x) if n is None else n
    if not 0 < count <= len(x):
        raise ValueError(f"n must be between 1 and {len(x)} (the rows of x), got {n}")
    index = rng.permutation(len(x))[:count]
    noisy = x[index] + noise * rng.standard_normal(x[index].shape)
    return np.clip(noisy, low, high), y[index].astype(np.int64)


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of ``predicted`` class ids equal to ``labels``; shapes must be equal (n,)."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    if predicted.shape != labels.shape:
        raise ValueError(f"predictions have shape {predicted.shape}, labels {labels.shape}")
    return float(np.mean(predicted == labels))
