"""Chapter 07's backbone on the CPU: training throughput, and what caching frozen features saves.

    python benchmarks/transfer_backbone.py            # CIFAR-10 shapes, random pixels, ~1-2 min
    python benchmarks/transfer_backbone.py --images 1024 --epochs 3   # quicker

Prints ``name: value`` lines:

* ``cifar_backbone train examples/s`` (the course's source network, ``cifar.BACKBONE``, with
  its head and augmentation) and the same for ``course_lib.training.cifar_resnet`` at its 4x
  cheaper widths (32, 64, 128, 256), measured in this process after one warm-up epoch;
  ``ratio backbone/resnet`` = how much faster the chapter's network trains.
* Feature extraction with a frozen backbone, the head trained for ``--epochs`` epochs two ways:
  ``fit`` on the images (the frozen backbone runs forward every epoch) and once-extracted
  features with ``finetuning.train_head``; ``ratio fit/cached`` = the saving.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096, help="random images per epoch")
    parser.add_argument("--epochs", type=int, default=10, help="head epochs (feature extraction)")
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from course_lib import cifar, finetuning
    from course_lib.training import RandomCropFlip, cifar_resnet

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 5, args.images)

    def throughput(model, batch_size=128) -> float:
        finetuning.compile_classifier(model, 1e-3)
        model.fit(x[: 2 * batch_size], y[: 2 * batch_size], batch_size=batch_size, verbose=0)
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        return args.images / (time.perf_counter() - start)

    keras.utils.set_random_seed(0)
    ours = throughput(cifar.classifier(cifar.cifar_backbone(), 5, augment=RandomCropFlip(4)))
    resnet = throughput(cifar_resnet(5, widths=(32, 64, 128, 256), augment=RandomCropFlip(4)))
    print(f"cifar_backbone train examples/s: {ours:.0f}")
    print(f"cifar_resnet(32,64,128,256) train examples/s: {resnet:.0f}")
    print(f"ratio backbone/resnet = {ours / resnet:.2f}")

    backbone = cifar.cifar_backbone()
    finetuning.set_trainable(backbone, False)
    model = cifar.classifier(backbone, 5)
    finetuning.compile_classifier(model, 1e-2)
    start = time.perf_counter()
    model.fit(x, y, batch_size=128, epochs=args.epochs, verbose=0)
    with_fit = time.perf_counter() - start
    start = time.perf_counter()
    finetuning.train_head(finetuning.extract_features(backbone, x), y, 5,
                        iterations=args.epochs * int(np.ceil(args.images / 128)))
    cached = time.perf_counter() - start
    print(f"frozen backbone, head by fit for {args.epochs} epochs: {with_fit:.2f} s")
    print(f"frozen backbone, features extracted once + head: {cached:.2f} s")
    print(f"ratio fit/cached = {with_fit / cached:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
