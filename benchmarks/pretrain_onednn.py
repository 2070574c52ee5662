"""Chapter 09's masked-token pre-training on the CPU: tokens/s with TensorFlow's oneDNN kernels
off (the notebooks' setting, for bit-stable outputs) and on (what ``course pretrain`` uses).

    python benchmarks/pretrain_onednn.py                # full recipe, random ids, ~2-3 min
    python benchmarks/pretrain_onednn.py --steps 20     # quicker

Each setting runs in its own process (the variable must be set before TensorFlow is imported),
trains ``imdb_mlm``'s full-mode model on random token windows for one warm-up epoch and one
measured epoch of ``--steps`` batches, and prints ``name: value`` lines: ``oneDNN off
tokens/s``, ``oneDNN on tokens/s`` and ``ratio on/off``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def measure(steps: int) -> float:
    """Tokens/s of one epoch of ``steps`` batches (after a warm-up epoch), in this process."""
    import numpy as np

    from course_lib import language

    recipe = language.pretraining_recipe(False)
    rng = np.random.default_rng(0)
    n = steps * recipe["batch_size"]
    ids = rng.integers(language.N_SPECIAL, recipe["vocab_size"], (n, recipe["max_len"]))
    ids[:, 0] = language.CLS
    model = language.build_pretraining_model(recipe)
    import keras

    model.compile(optimizer=language.adamw(recipe["peak_lr"], 2 * steps),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y, w = language.pretraining_batch(ids, rng, recipe["vocab_size"], recipe["mask_rate"],
                                         recipe["max_pred"])
    fit = dict(batch_size=recipe["batch_size"], epochs=1, verbose=0, shuffle=False)
    model.fit(x, y, sample_weight=w, **fit)  # warm-up: tracing, allocation
    start = time.perf_counter()
    model.fit(x, y, sample_weight=w, **fit)
    return n * recipe["max_len"] / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="batches in the measured epoch")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.steps)))
        return 0
    speeds = {}
    for label, flag in (("off", "0"), ("on", "1")):
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": flag, "TF_CPP_MIN_LOG_LEVEL": "3",
               "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}
        out = subprocess.run([sys.executable, __file__, "--child", "--steps", str(args.steps)],
                             env=env, capture_output=True, text=True, check=True)
        speeds[label] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"oneDNN {label} tokens/s: {speeds[label]:,.0f}", flush=True)
    print(f"ratio on/off: {speeds['on'] / speeds['off']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
