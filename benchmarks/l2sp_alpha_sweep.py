"""Chapter 07, section 5: choose L2-SP's and L2's alpha per label budget on the validation split.

Li, Grandvalet and Davoine (2018) fine-tune every layer with SGD + momentum and choose the
penalty's strength by validation; chapter 07 compares L2-SP with its L2-toward-zero baseline in
that setting. Every alpha of ``transfer.chapter_recipe(False)["penalty"]["alphas"]``, for both
penalties (and the unpenalised run), at every budget of ``["penalty"]["budgets"]`` and seed of
``["tune_seeds"]``, fine-tuned from the shipped "cifar_source" model on the chapter's own
labelled subsets, scored on the chapter's validation images (never the test set). The records
go to ``course_lib/studies/l2sp_alpha.json``, which chapter 07 prints and takes its alphas from
(``transfer.load_penalty_sweep``, ``transfer.chosen_alphas``).

    COURSE_DATA_DIR=../shared/data python benchmarks/l2sp_alpha_sweep.py [--out FILE]

About 10 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import time

import course_lib
from course_lib import cifar, pretrained, transfer
from course_lib.environment import hardware


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(transfer.PENALTY_SWEEP))
    args = parser.parse_args()
    course_lib.setup()
    recipe = transfer.chapter_recipe(False)
    x_target, y_target = cifar.cifar_task("target", "train", sample=False)
    pool, validation = transfer.validation_split(y_target, recipe["validation_per_class"], seed=0)
    source_model, _ = pretrained.get_or_train("cifar_source", fast=False)
    start = time.perf_counter()
    sweep = transfer.penalty_sweep(source_model, recipe, x_target[pool], y_target[pool],
                                   x_target[validation], y_target[validation])
    seconds = time.perf_counter() - start
    print(sweep.table())
    print("chosen on validation:", transfer.chosen_alphas(sweep, recipe))
    with open(args.out, "w") as handle:
        json.dump({"what": "chapter 07's alpha sweep: validation accuracy (never the test set) of "
                           "SGD fine-tuning with L2-SP / L2 at each alpha, per budget and seed",
                   "penalty": recipe["penalty"], "seconds": round(seconds, 1),
                   "hardware": hardware(),
                   "records": sweep.records}, handle, indent=1)
    print(f"wrote {args.out} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
