"""Input pipelines that keep the accelerator fed.

* ``DeviceBatches``: the whole data set is copied to the device once (as uint8, 4x smaller
  than float32); each batch is gathered there with ``keras.ops.take``. No host work and no
  host-to-device copy per step. Works on every backend (a ``keras.utils.PyDataset``; on JAX
  ``fit`` passes the device arrays straight to the jitted step).
* ``tf_dataset``: TensorFlow backend only: ``tf.data`` with cache, shuffle, batch, prefetch.
* ``train_batches`` / ``eval_batches``: the right one for the current backend.

CIFAR-10 train as uint8 is 150 MB, MNIST 47 MB: both fit on any GPU. On the 2-core CPU
(TensorFlow, MNIST CNN) the pipeline matters little: conv kernels dominate
(``benchmarks/time_to_accuracy.py`` has the figures). The gain is on GPUs, where a host-side
pipeline would otherwise copy and slice every batch on the CPU.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops


def _check_xy(x, y, batch_size: int) -> None:
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: x {tuple(x.shape)}, y {tuple(y.shape)}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got batch_size={batch_size}")


class DeviceBatches(keras.utils.PyDataset):
    """Shuffled batches sliced on the device from arrays held on the device.

    Args:
        x: (n, ...) array, e.g. uint8 images (n, 32, 32, 3).
        y: (n,) or (n, ...) labels.
        batch_size: examples per batch.
        shuffle: new random order every epoch.
        drop_remainder: drop the last partial batch, so every step has the same shape and a
            jit-compiled step is traced once (a partial batch costs a second compilation).
        seed: seed of the shuffling.
    """

    def __init__(
        self,
        x,
        y,
        batch_size: int,
        shuffle: bool = True,
        drop_remainder: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        _check_xy(x, y, batch_size)
        if drop_remainder and len(x) < batch_size:
            raise ValueError(
                f"drop_remainder needs at least batch_size={batch_size} examples, got {len(x)}"
            )
        self.x = ops.convert_to_tensor(x)
        self.y = ops.convert_to_tensor(y)
        self.n = len(x)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_remainder = drop_remainder
        self.rng = np.random.default_rng(seed)
        self.order = None
        self.on_epoch_end()

    def __len__(self) -> int:
        if self.drop_remainder:
            return self.n // self.batch_size
        return math.ceil(self.n / self.batch_size)

    def __getitem__(self, index: int):
        """Batch ``index``: (x (batch, ...), y (batch, ...)) as backend tensors."""
        start = index * self.batch_size
        idx = self.order[start : start + self.batch_size]
        return ops.take(self.x, idx, axis=0), ops.take(self.y, idx, axis=0)

    def on_epoch_end(self) -> None:
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        self.order = ops.convert_to_tensor(order.astype("int32"))


def tf_dataset(x, y, batch_size: int, shuffle: bool = True, drop_remainder: bool = True, seed=0):
    """``tf.data`` pipeline: from_tensor_slices -> cache -> shuffle -> batch -> prefetch.

    TensorFlow backend only (``fit`` on JAX would pull every batch through the host).
    """
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"tf_dataset needs the tensorflow backend, this is {keras.backend.backend()}; "
            "use DeviceBatches"
        )
    _check_xy(x, y, batch_size)
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def train_batches(x, y, batch_size: int, shuffle: bool = True, drop_remainder: bool = True):
    """``tf_dataset`` on the TensorFlow backend, ``DeviceBatches`` on JAX and PyTorch."""
    if keras.backend.backend() == "tensorflow":
        return tf_dataset(x, y, batch_size, shuffle, drop_remainder)
    return DeviceBatches(x, y, batch_size, shuffle, drop_remainder)


def eval_batches(x, y, batch_size: int = 1000):
    """Batches in order, the last one partial: for ``validation_data`` and ``predict``."""
    return train_batches(x, y, batch_size, shuffle=False, drop_remainder=False)
