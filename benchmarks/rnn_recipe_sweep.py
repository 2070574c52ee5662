"""Chapter 05's recipe exploration, recorded: the GRU (last-state readout) on IMDB, trained with
``rnn.train_sentiment`` under a grid of recipes and compared on the validation split only
(never the test set). The chapter's recipe (``rnn.chapter_recipe(False)``) was first chosen in
unrecorded exploratory runs; this script repeats that choice in the open so that anyone can see
what the alternatives score.

    python benchmarks/rnn_recipe_sweep.py [--reviews N] [--out notes/rnn_recipe_sweep.md]

Grid: embedding dropout {0, 0.5} x embedding width {32, 64} x learning rate {1e-3, 3e-3}, the rest
as the chapter (20,000 words, 512 steps, 32 units, batch 64, at most 5 epochs, early stopping on
validation accuracy, bucketed batches). The training/validation split is the chapter's
(``rnn.train_val_split(len(texts), 0.2, seed=0)``).
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

import course_lib
from course_lib import data, environment, rnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=None,
                        help="train on the first N training reviews of the split (default: all)")
    parser.add_argument("--out", default=None, help="also write the table to this Markdown file")
    args = parser.parse_args()
    course_lib.setup()
    recipe = rnn.chapter_recipe(course_lib.fast_mode())
    texts, labels = data.load("imdb", "train")
    texts = rnn.clean_reviews(texts)
    train_idx, val_idx = rnn.train_val_split(len(texts), val_fraction=0.2, seed=0)
    if args.reviews:
        train_idx = train_idx[:args.reviews]
    vectorizer = rnn.make_vectorizer(texts[train_idx], vocab_size=recipe["vocab_size"],
                                     sequence_length=recipe["sequence_length"])
    ids = vectorizer(texts)
    train, val = (ids[train_idx], labels[train_idx]), (ids[val_idx], labels[val_idx])
    rows = []
    for dropout, width, lr in itertools.product((0.0, 0.5), (32, 64), (1e-3, 3e-3)):
        model = rnn.sentiment_model("gru", recipe["vocab_size"], None, embed_dim=width,
                                    units=recipe["units"], embedding_dropout=dropout, readout="last",
                                    seed=0)
        start = time.perf_counter()
        run = rnn.train_sentiment(model, train, val, epochs=recipe["epochs"],
                                  batch_size=recipe["batch_size"], learning_rate=lr, bucket=True)
        rows.append((dropout, width, lr, run.val_accuracy, run.best_epoch,
                     time.perf_counter() - start))
        print(f"embedding dropout {dropout:g}, width {width}, lr {lr:g}: validation accuracy "
              f"{run.val_accuracy:.3f} (epoch {run.best_epoch}), {rows[-1][-1]:.0f} s", flush=True)
    lines = [f"GRU (last state), {len(train_idx):,} training reviews, validation "
             f"{len(val_idx):,} reviews, seed 0, {environment.hardware()}", "",
             "| embedding dropout | embedding width | learning rate | validation accuracy | best epoch | seconds |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {d:g} | {w} | {lr:g} | {acc:.3f} | {e} | {s:.0f} |" for d, w, lr, acc, e, s in rows]
    best = max(rows, key=lambda r: r[3])
    lines += ["", f"highest validation accuracy: embedding dropout {best[0]:g}, width {best[1]}, "
                  f"learning rate {best[2]:g} ({best[3]:.3f}); one seed, so differences of about a "
                  f"point are within the noise (validation SE ~{100 * np.sqrt(0.25 / len(val_idx)):.1f} points)"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
