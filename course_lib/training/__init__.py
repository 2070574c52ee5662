"""Fast Keras training on any backend: precision policy, on-device input pipeline and
augmentation, warm-up/one-cycle schedules, label smoothing, flip TTA, throughput callback,
small fast models, data parallelism over several devices (JAX), and the recipes of
``benchmarks/time_to_accuracy.py``.

Importing this package imports Keras (and its backend). Weight EMA is Keras's own:
``keras.optimizers.AdamW(..., use_ema=True)`` with ``keras.callbacks.SwapEMAWeights``.
"""

from course_lib.training.augment import RandomCropFlip
from course_lib.training.callbacks import TrainingMonitor, tensorboard
from course_lib.training.devices import (
    DeviceInfo,
    PrecisionChoice,
    apply_precision,
    choose_precision,
    detect_device,
    wrap_optimizer,
)
from course_lib.training.distribution import DataParallelPlan, plan_data_parallel
from course_lib.training.losses import SmoothedSparseCrossentropy
from course_lib.training.models import cifar_resnet, mnist_cnn
from course_lib.training.pipeline import DeviceBatches, eval_batches, tf_dataset, train_batches
from course_lib.training.schedules import OneCycle, WarmupLinearDecay, scale_learning_rate
from course_lib.training.tta import FlipTTAValidation, flip_tta_model

__all__ = [
    "DataParallelPlan",
    "DeviceBatches",
    "DeviceInfo",
    "FlipTTAValidation",
    "OneCycle",
    "PrecisionChoice",
    "RandomCropFlip",
    "SmoothedSparseCrossentropy",
    "TrainingMonitor",
    "WarmupLinearDecay",
    "apply_precision",
    "choose_precision",
    "cifar_resnet",
    "detect_device",
    "eval_batches",
    "flip_tta_model",
    "mnist_cnn",
    "plan_data_parallel",
    "scale_learning_rate",
    "tensorboard",
    "tf_dataset",
    "train_batches",
    "wrap_optimizer",
]
