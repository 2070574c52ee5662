"""Chapter 04 helpers: convolution and pooling written as plain loops, their gradients, the
document's formulas next to the correct ones, and the chapter's NumPy and Keras CNNs
(document 003, sections 2.2, 3.2, 4.2, 4.5.2 and 5.2; document 000, section 3.2).

Layout everywhere: NHWC, as Keras and ``course_lib.nn``: images (batch, height, width,
channels), kernels (kh, kw, channels_in, filters). The layers themselves live in
``course_lib.nn`` (NumPy) and ``keras.layers``; this module holds what the chapter shows.

For other chapters: ``keras_mnist_cnn()`` is the course's Keras MNIST CNN (34,826 parameters),
an uncompiled functional model from images (batch, 28, 28, 1) in [0, 1] to logits (batch, 10).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from course_lib import nn
from course_lib.nn import checks
from course_lib.nn.layers.conv import conv_output_size

# -- convolution and pooling as plain loops ------------------------------------------------


def output_size(size: int, kernel: int, stride: int = 1, padding: str | int = "valid") -> int:
    """Output length along one axis.

    padding: an explicit number p of zeros on each side -> floor((size + 2p - kernel) / stride) + 1;
    "valid" (p = 0); "same" (TensorFlow/Keras) -> ceil(size / stride).
    """
    if isinstance(padding, str):
        return conv_output_size(size, kernel, stride, padding)[0]
    if size + 2 * padding < kernel:
        raise ValueError(
            f"input size {size} with padding {padding} is smaller than the window {kernel}"
        )
    return (size + 2 * padding - kernel) // stride + 1


def _pad_images(x: np.ndarray, kh: int, kw: int, stride: int, padding: str | int) -> np.ndarray:
    """x (batch, h, w, c) padded as Keras ("valid"/"same") or by p zeros on every side."""
    if isinstance(padding, str):
        _, top, bottom = conv_output_size(x.shape[1], kh, stride, padding)
        _, left, right = conv_output_size(x.shape[2], kw, stride, padding)
    else:
        top = bottom = left = right = padding
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))


def _images(name: str, x) -> np.ndarray:
    return nn.checks.as_float_array(name, x, ndim=4)


def conv2d_loop(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None,
                stride: int = 1, padding: str | int = "valid") -> np.ndarray:
    """The convolution of every framework (a cross-correlation), one output number at a time.

    out[n, i, j, f] = bias[f] + sum_{u, v, c} kernel[u, v, c, f] * x_padded[n, i*s + u, j*s + v, c]

    x: (batch, h, w, cin); kernel: (kh, kw, cin, filters); bias: (filters,) or None.
    Returns (batch, out_h, out_w, filters). Slow and readable: for teaching and checking.
    """
    x, kernel = _images("x", x), nn.checks.as_float_array("kernel", kernel, ndim=4)
    kh, kw, cin, filters = kernel.shape
    if x.shape[3] != cin:
        raise ValueError(f"`x` has {x.shape[3]} channels (shape {x.shape}), `kernel` expects "
                         f"{cin} (shape {kernel.shape})")
    xp = _pad_images(x, kh, kw, stride, padding)
    oh = output_size(x.shape[1], kh, stride, padding)
    ow = output_size(x.shape[2], kw, stride, padding)
    out = np.zeros((x.shape[0], oh, ow, filters), dtype=np.result_type(x, kernel))
    for n in range(x.shape[0]):
        for i in range(oh):
            for j in range(ow):
                window = xp[n, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
                for f in range(filters):
                    out[n, i, j, f] = np.sum(window * kernel[:, :, :, f])
    return out if bias is None else out + bias


def maxpool2d_loop(x: np.ndarray, pool: int = 2, stride: int | None = None) -> np.ndarray:
    """Max pooling with "valid" windows, one output at a time: (batch, h, w, c) ->
    (batch, out_h, out_w, c), out[n, i, j, c] = max of x[n, i*s:i*s+pool, j*s:j*s+pool, c]."""
    x = _images("x", x)
    stride = pool if stride is None else stride
    oh, ow = output_size(x.shape[1], pool, stride), output_size(x.shape[2], pool, stride)
    out = np.zeros((x.shape[0], oh, ow, x.shape[3]), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            window = x[:, i * stride:i * stride + pool, j * stride:j * stride + pool, :]
            out[:, i, j, :] = window.max(axis=(1, 2))
    return out


def conv_input_gradient(grad_out: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """dL/dx of a stride-1 "valid" convolution: the "full" convolution of dL/dout with the
    kernel flipped in both spatial axes (and its channel axes swapped).

    grad_out: (batch, out_h, out_w, filters); kernel: (kh, kw, cin, filters).
    Returns (batch, out_h + kh - 1, out_w + kw - 1, cin).
    """
    kh, kw = kernel.shape[:2]
    flipped = np.flip(kernel, axis=(0, 1)).transpose(0, 1, 3, 2)  # (kh, kw, filters, cin)
    padded = np.pad(grad_out, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
    return conv2d_loop(padded, flipped)


def conv_kernel_gradient(x: np.ndarray, grad_out: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """dL/dkernel of a stride-1 "valid" convolution: for each kernel entry (u, v), the input
    pixels it met times the output gradient, summed over batch and positions.

    dK[u, v, c, f] = sum_{n, i, j} x[n, i + u, j + v, c] * grad_out[n, i, j, f]
    x: (batch, h, w, cin); grad_out: (batch, h - kh + 1, w - kw + 1, filters).
    Returns (kh, kw, cin, filters).
    """
    oh, ow = grad_out.shape[1:3]
    dk = np.zeros((kh, kw, x.shape[3], grad_out.shape[3]))
    for u in range(kh):
        for v in range(kw):
            dk[u, v] = np.einsum("nijc,nijf->cf", x[:, u:u + oh, v:v + ow, :], grad_out)
    return dk


def maxpool_gradient_map(x: np.ndarray, pool: int = 2) -> np.ndarray:
    """dL/dx of max pooling (pool = stride) when every output gradient is 1: a 0/1 map with
    a 1 at each window's arg-max (the first one on ties). x: (batch, h, w, c), same shape out."""
    layer = nn.MaxPool2D(pool, dtype=x.dtype)
    out = layer.forward(x)
    return layer.backward(np.ones_like(out))


def conv_and_dense_sizes(height: int, width: int, cin: int, filters: int,
                         kernel: int) -> dict[str, dict[str, int]]:
    """Parameters and multiply-adds of a "valid" kernel x kernel convolution with ``filters``
    filters, and of a dense layer mapping the same (height, width, cin) image to the same
    number of outputs (out_h * out_w * filters)."""
    oh, ow = height - kernel + 1, width - kernel + 1
    outputs, inputs = oh * ow * filters, height * width * cin
    return {
        "conv": {"parameters": kernel * kernel * cin * filters + filters,
                 "multiply_adds": outputs * kernel * kernel * cin, "outputs": outputs},
        "dense": {"parameters": inputs * outputs + outputs, "multiply_adds": inputs * outputs,
                  "outputs": outputs},
    }


# -- the documents' formulas ---------------------------------------------------------------


def document_003_convolution(f: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Document 003, section 4.2, as printed: C_ij = sum_{k=1}^{m} f_ik I_kj, a matrix product of
    the kernel f (rows, m) with the first m rows of the image I (m summed over the kernel's
    columns). f: (a, m), image: (h, w) with h >= m. Returns (a, w)."""
    m = f.shape[1]
    return f @ image[:m]


def document_003_max_pool(image: np.ndarray) -> np.ndarray:
    """Document 003, section 4.2, as printed: P_ij = max_k I_kj, the maximum over k of column j
    (the whole column: no window). image: (h, w). Returns (1, w)."""
    return image.max(axis=0, keepdims=True)


def document_003_worked_example(f1, f2, b1: float, row) -> dict[str, np.ndarray | float]:
    """Document 003, section 4.5.2, exactly as printed: C_1j = f_11 I_1j + f_12 I_1(j+1) +
    f_13 I_1(j+2) + b_1 (j = 1..3), C_2j the same with f_2 and again b_1; a = max(0, C);
    P_11 = max(a_11, a_12, a_13), P_12 = max(a_21, a_22, a_23); output z = P_11 * P_12.

    f1, f2: three weights each; row: the pixels I_11..I_15 (five: the formulas reach I_15).
    """
    f1, f2, row = np.asarray(f1, float), np.asarray(f2, float), np.asarray(row, float)
    c = np.array([[f @ row[j:j + 3] + b1 for j in range(3)] for f in (f1, f2)])
    a = np.maximum(0.0, c)
    p = a.max(axis=1)
    return {"C": c, "a": a, "P": p, "z": float(p[0] * p[1])}


# Document 003, section 5.2, exactly as printed (only the comments are translated).
DOCUMENT_003_CODE = """
import tensorflow as tf
from tensorflow.keras import layers
from tensorflow.keras.models import Model
from tensorflow.keras.optimizers import Adam

# 5.2.1 data preparation
# load and preprocess the image data
# ...

# 5.2.2 build the model
# the input layer
inputs = layers.Input(shape=(28, 28, 1))

# the convolutional layer
conv1 = layers.Conv2D(32, (3, 3), activation='relu')(inputs)
pool1 = layers.MaxPooling2D((2, 2))(conv1)

# the fully connected layer
flatten = layers.Flatten()(pool1)
dense1 = layers.Dense(64, activation='relu')(flatten)

# the output layer
outputs = layers.Dense(10, activation='softmax')(dense1)

# build the model
model = Model(inputs=inputs, outputs=outputs)

# compile the model
model.compile(optimizer=Adam(), loss='categorical_crossentropy', metrics=['accuracy'])

# 5.2.3 train the model
# model training
# ...

# 5.2.4 transfer learning
# load the source-task model
source_model = Model(inputs=model.input, outputs=model.get_layer('dense1').output)

# transfer the model to the target task
target_model = Model(inputs=model.input, outputs=model.outputs)
target_model.set_weights(source_model.get_weights())

# adjust the target-task model
target_model.get_layer('dense1').set_weights(target_model.get_layer('dense1').get_weights() * 2)

# train the target-task model
# ...

# 5.2.5 evaluate the model
# evaluate the model on the test set
# ...
"""

# Each repair, applied on top of the previous ones: (what it fixes, printed line, repaired line).
DOCUMENT_003_REPAIRS = [
    ("Keras 3 imports (no TensorFlow needed)",
     "import tensorflow as tf\nfrom tensorflow.keras import layers\n"
     "from tensorflow.keras.models import Model\nfrom tensorflow.keras.optimizers import Adam\n",
     "import keras\nfrom keras import layers\nfrom keras import Model\n"
     "from keras.optimizers import Adam\n"),
    ("name the layer that get_layer('dense1') looks up",
     "dense1 = layers.Dense(64, activation='relu')(flatten)",
     "dense1 = layers.Dense(64, activation='relu', name='dense1')(flatten)"),
    ("copy weights layer by layer (the two models have 4 and 6 weight arrays)",
     "target_model.set_weights(source_model.get_weights())",
     "for layer in source_model.layers:\n"
     "    target_model.get_layer(layer.name).set_weights(layer.get_weights())"),
    ("scale each array (a list times 2 repeats the list)",
     "target_model.get_layer('dense1').set_weights("
     "target_model.get_layer('dense1').get_weights() * 2)",
     "target_model.get_layer('dense1').set_weights("
     "[w * 2 for w in target_model.get_layer('dense1').get_weights()])"),
]


def document_003_versions() -> list[tuple[str, str]]:
    """(label, code): the printed code, then the code after each repair in turn."""
    versions = [("as printed", DOCUMENT_003_CODE)]
    code = DOCUMENT_003_CODE
    for label, old, new in DOCUMENT_003_REPAIRS:
        if code.count(old) != 1:
            raise ValueError(f"repair {label!r}: the line to replace is not found once")
        code = code.replace(old, new)
        versions.append((f"+ {label}", code))
    return versions


def run_document_003() -> list[tuple[str, str]]:
    """Run the printed code and each repaired version in a fresh Keras session (layer names
    start from scratch each time); returns (label, "ok" or the error's first line)."""
    import keras

    from course_lib.mlp import run_code

    results = []
    for label, code in document_003_versions():
        keras.backend.clear_session()
        results.append((label, run_code(code)))
    return results


# -- data ----------------------------------------------------------------------------------


def mnist_images(x: np.ndarray) -> np.ndarray:
    """uint8 digits (n, 28, 28) -> float32 images (n, 28, 28, 1) in [0, 1]."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"`x` must be grey images (n, height, width), got shape {x.shape}")
    return (x[..., None] / np.float32(255)).astype(np.float32)


def split_validation(x: np.ndarray, y: np.ndarray, n_val: int, seed: int = 0):
    """A seeded random validation split taken from the training data:
    (x_train, y_train, x_val, y_val), the last two with ``n_val`` examples."""
    if not 0 < n_val < len(x):
        raise ValueError(f"`n_val` must be between 1 and {len(x) - 1}, got {n_val}")
    nn.checks.check_same_length("x", np.asarray(x), "y", np.asarray(y))
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def digit_subset(x: np.ndarray, y: np.ndarray, digits: tuple[int, ...]):
    """The examples whose label is in ``digits``, relabelled 0..len(digits)-1 in that order."""
    digits = tuple(digits)
    keep = np.isin(y, digits)
    relabel = np.full(max(digits) + 1, -1)
    relabel[list(digits)] = np.arange(len(digits))
    return x[keep], relabel[y[keep]]


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Accuracy within each true class: (num_classes,), NaN for a class with no examples."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    nn.checks.check_same_shape("y_true", y_true, "y_pred", y_pred)
    correct = np.bincount(y_true[y_true == y_pred], minlength=num_classes).astype(float)
    total = np.bincount(y_true, minlength=num_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return correct / total


# -- the NumPy CNN -------------------------------------------------------------------------


def numpy_cnn(filters: tuple[int, int] = (16, 32), lr: float = 1e-3, seed: int = 0) -> nn.Sequential:
    """The chapter's NumPy CNN for MNIST, compiled (Adam, softmax cross-entropy on logits):

    (batch, 28, 28, 1) -> Conv2D(f1, 3, relu) (26, 26, f1) -> MaxPool2D(2) (13, 13, f1)
    -> Conv2D(f2, 3, relu) (11, 11, f2) -> MaxPool2D(2) (5, 5, f2) -> Flatten (25 f2)
    -> Dense(10) logits.
    """
    f1, f2 = filters
    model = nn.Sequential([
        nn.Conv2D(f1, 3, activation="relu", seed=seed), nn.MaxPool2D(2),
        nn.Conv2D(f2, 3, activation="relu", seed=seed + 1), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(10, seed=seed + 2),
    ])
    model.compile(optimizer=nn.Adam(learning_rate=lr),
                  loss=nn.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.build((28, 28, 1))
    return model


def fit_keep_best(model: nn.Sequential, x, y, x_val, y_val, *, epochs: int, batch_size: int = 64,
                  seed: int = 0, verbose: bool = True) -> dict:
    """Train a NumPy ``Sequential`` epoch by epoch and keep the weights of the epoch with the best
    validation accuracy (the number of epochs is chosen on the validation split).

    Prints one line per epoch (stdout) when ``verbose``. Returns {"history": {...} (per-epoch
    loss, accuracy, val_loss, val_accuracy, seconds), "best_epoch": int (1-based), "seconds"}.
    """
    history: dict[str, list[float]] = {}
    best, best_weights, start = -1.0, None, time.perf_counter()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        logs = model.fit(x, y, epochs=1, batch_size=batch_size, validation_data=(x_val, y_val),
                         verbose=0, seed=seed + epoch).history
        logs = {k: v[0] for k, v in logs.items()}
        logs["seconds"] = time.perf_counter() - t0
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        if logs["val_accuracy"] > best:
            best, best_weights, best_epoch = logs["val_accuracy"], model.get_weights(), epoch + 1
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}: loss {logs['loss']:.4f}, accuracy "
                  f"{logs['accuracy']:.4f}, val_accuracy {logs['val_accuracy']:.4f} "
                  f"({logs['seconds']:.1f}s)", file=sys.stdout, flush=True)
    model.set_weights(best_weights)
    return {"history": history, "best_epoch": best_epoch, "seconds": time.perf_counter() - start}


def feature_maps(model: nn.Sequential, x: np.ndarray, upto: int) -> np.ndarray:
    """Output of the first ``upto`` layers of a NumPy ``Sequential`` (inference mode).
    x: (batch, ...) -> e.g. (batch, 26, 26, filters) after the first Conv2D (upto=1)."""
    out = model.layers[0]._check_input(x)
    for layer in model.layers[:upto]:
        out = layer.forward(out)
    return out


# -- Keras models --------------------------------------------------------------------------


def keras_mnist_cnn(num_classes: int = 10, dropout: float = 0.5):
    """The course's Keras MNIST CNN (the "simple MNIST convnet" of keras.io), uncompiled.

    (batch, 28, 28, 1) floats in [0, 1] -> Conv2D(32, 3, relu) (26, 26, 32) -> MaxPool (13, 13, 32)
    -> Conv2D(64, 3, relu) (11, 11, 64) -> MaxPool (5, 5, 64) -> Flatten (1600) -> Dropout
    -> Dense(num_classes) logits (batch, num_classes). 34,826 parameters for 10 classes.
    Compile with ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def keras_document_cnn(num_classes: int = 10):
    """Document 003 section 5.2's model, repaired: every layer named (so ``get_layer("dense1")``
    works), uncompiled. (batch, 28, 28, 1) in [0, 1] -> Conv2D(32, 3, relu) -> MaxPool(2)
    -> Flatten (5408) -> Dense(64, relu) "dense1" -> Dense(num_classes, softmax) probabilities.
    347,146 parameters for 10 classes."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(64, activation="relu", name="dense1")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="outputs")(x)
    return keras.Model(inputs, outputs, name="document_cnn")


def transfer_model(source, num_classes: int, cut: str = "dense1", name: str = "target"):
    """A target-task model on a trained source model's features (document 000 section 3.2: load
    the pre-trained model, choose the layers to keep, add a new classifier).

    A copy of the source's layers up to the layer ``cut`` becomes one frozen block "features"
    (``trainable = False``, called with ``training=False``) under a new head: for
    ``cut="dense1"`` (the document's choice) Dense(num_classes, softmax) "target_head"; for an
    earlier cut (e.g. "flatten") Dense(64, relu) "target_dense" first. A copy, with new layers: training the target never changes the source
    (a ``keras.Model`` built on the source's tensors would share its layers).
    Uncompiled: compile after every change of ``trainable``. (batch, 28, 28, 1) -> (batch, k).
    """
    import keras
    from keras import layers

    shared = keras.Model(source.input, source.get_layer(cut).output)
    features = keras.models.clone_model(shared)  # new layers, the source's weights copied in
    features.set_weights(shared.get_weights())
    features.name = "features"
    features.trainable = False
    inputs = keras.Input(shape=(28, 28, 1), name="image")
    h = features(inputs, training=False)
    if cut != "dense1":
        h = layers.Dense(64, activation="relu", name="target_dense")(h)
    outputs = layers.Dense(num_classes, activation="softmax", name="target_head")(h)
    return keras.Model(inputs, outputs, name=name)


def _accuracy(model, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float:
    """Test accuracy from direct (eager) calls in inference mode: no traced function to build."""
    from keras import ops

    pred = np.concatenate([ops.convert_to_numpy(model(x[i:i + batch_size], training=False))
                           for i in range(0, len(x), batch_size)]).argmax(axis=1)
    return float(np.mean(pred == y))


def keras_cifar_cnn(num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64),
                    augment=None, batchnorm: bool = True, bn_momentum: float = 0.99):
    """A small CIFAR-10 CNN, uncompiled: (batch, 32, 32, 3) pixels 0..255 (uint8 or float)
    -> [augment, e.g. course_lib.training.RandomCropFlip] -> rescale to [0, 1]
    -> three blocks of Conv2D(w, 3, same) + BatchNorm + ReLU + MaxPool(2) (32 -> 16 -> 8 -> 4)
    -> GlobalAveragePooling (w3) -> Dense(num_classes) logits (float32).
    The default widths give 24,570 parameters (2.8 million multiply-adds per image: small enough
    for a few minutes per run on a CPU); (32, 64, 128) gives 95,210. batchnorm=False: the same
    network without its batch-norm layers (the convolutions get biases instead), for the
    ablation of section 8; bn_momentum: the batch-norm layers' momentum (Keras's default 0.99)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(32, 32, 3), name="image")
    x = augment(inputs) if augment is not None else inputs
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    for block, width in enumerate(widths, start=1):
        x = layers.Conv2D(width, 3, padding="same", use_bias=not batchnorm, name=f"conv{block}")(x)
        if batchnorm:
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"bn{block}")(x)
        x = layers.ReLU(name=f"relu{block}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name="cifar_cnn")


def transfer_run(source, x_train, y_train, x_test, y_test, *, seed: int, epochs: int = 15,
                 fine_tune_epochs: int = 10, batch_size: int = 32) -> dict[str, float]:
    """One seed of the small-data comparison on a target task with k classes (labels 0..k-1),
    every model trained with Adam on the same images:

    - "from scratch": ``keras_document_cnn(k)`` on the target data alone (learning rate 1e-3)
      for ``epochs + fine_tune_epochs`` epochs: as many passes over the target images as the
      fine-tuned model gets in its two stages together (a matched budget);
    - "frozen features": ``transfer_model(source, k)`` (the source's layers up to "dense1",
      frozen), only the new head trains (learning rate 1e-2: a lone softmax layer needs it);
    - "fine-tuned": that model with its feature block unfrozen (``trainable = True``), compiled
      again and trained ``fine_tune_epochs`` more at 3e-4.

    x: (n, 28, 28, 1) in [0, 1]; y: (n,) ints. Returns each test accuracy, and the trainable
    parameters of the transfer model frozen and unfrozen.
    """
    import keras

    k = int(y_train.max()) + 1
    fit = {"batch_size": batch_size, "verbose": 0}

    def compiled(model, lr):
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
        return model

    def trainable(model) -> float:
        return float(sum(np.prod(w.shape) for w in model.trainable_weights))

    keras.utils.set_random_seed(seed)
    scratch = compiled(keras_document_cnn(k), 1e-3)
    scratch.fit(x_train, y_train, epochs=epochs + fine_tune_epochs, **fit)
    results = {"from scratch": _accuracy(scratch, x_test, y_test)}

    keras.utils.set_random_seed(seed)
    target = compiled(transfer_model(source, k), 1e-2)  # compiled after freezing: it takes effect
    results["trainable, frozen"] = trainable(target)
    target.fit(x_train, y_train, epochs=epochs, **fit)
    results["frozen features"] = _accuracy(target, x_test, y_test)

    target.get_layer("features").trainable = True
    compiled(target, 3e-4)  # compile again after changing trainable
    results["trainable, fine-tuned"] = trainable(target)
    target.fit(x_train, y_train, epochs=fine_tune_epochs, **fit)
    results["fine-tuned"] = _accuracy(target, x_test, y_test)
    return results


# --------------------------------------------------------------------------------------------
# Section 8: receptive fields, residual connections.
# --------------------------------------------------------------------------------------------


def receptive_fields(model) -> list[dict]:
    """The receptive field of every convolution and pooling layer of a Keras model, in input
    pixels (square kernels and strides assumed, as in this course's networks).

    With r_0 = 1 and j_0 = 1 (one input pixel, one pixel between neighbouring inputs), a layer
    with kernel k, stride s and dilation d gives r = r_prev + d (k - 1) j_prev and
    j = j_prev s: r is the side of the input patch one output unit sees, j the distance in input
    pixels between neighbouring output units. Returns one dict per such layer, in order:
    name, kernel, stride, jump, field, output (the layer's spatial output size)."""
    from keras import layers

    rows, field, jump = [], 1, 1
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            kernel, stride, dilation = layer.kernel_size[0], layer.strides[0], layer.dilation_rate[0]
        elif isinstance(layer, layers.MaxPooling2D | layers.AveragePooling2D):
            kernel, stride, dilation = layer.pool_size[0], layer.strides[0], 1
        else:
            continue
        field += dilation * (kernel - 1) * jump
        jump *= stride
        rows.append({"name": layer.name, "kernel": kernel, "stride": stride, "jump": jump,
                     "field": field, "output": layer.output.shape[1]})
    return rows


def accuracy_with_batch_statistics(model, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> float:
    """Accuracy of ``model`` when its batch-norm layers normalise with each batch's own statistics
    (the model called with ``training=True``, ``batch_size`` examples at a time) instead of their
    moving averages. Use it on a model without dropout or augmentation layers: they would act too.
    Side effect: the call updates the moving statistics, as a training step would."""
    batch_size = checks.check_positive_int("batch_size", batch_size)
    predictions = [np.asarray(model(x[i:i + batch_size], training=True)).argmax(axis=1)
                   for i in range(0, len(x), batch_size)]
    return float(np.mean(np.concatenate(predictions) == np.asarray(y)))


STACK_KINDS = ("plain", "residual", "scaled residual")


def _stack_kind(kind: str) -> str:
    checks.check_choice("kind", kind, list(STACK_KINDS))
    return kind


def stack_gradient_norms(kind: str, depth: int = 30, width: int = 64, n: int = 256,
                         seed: int = 0) -> np.ndarray:
    """How the gradient's size changes on its way down a deep stack, at initialisation, in NumPy.

    The stack has ``depth`` layers h_{l+1} = g(h_l) on (n, width) activations, weights drawn
    from Keras's default initialiser (Glorot uniform, variance 1 / width here), ReLU units:

    - "plain": h_{l+1} = relu(h_l W_l);
    - "residual": h_{l+1} = h_l + relu(h_l W_l) (an identity path around every layer);
    - "scaled residual": h_{l+1} = h_l + relu(h_l W_l) / sqrt(depth) (the branch kept small at
      initialisation, as normalisation-free ResNets do with a small or zero-initialised scale:
      Fixup, SkipInit).

    Backpropagates a random output gradient and returns ||dL/dh_l|| for l = 0 .. depth, shape
    (depth + 1,): entry 0 is what reaches the input, entry ``depth`` the output gradient."""
    kind = _stack_kind(kind)
    depth, width = checks.check_positive_int("depth", depth), checks.check_positive_int("width", width)
    rng = np.random.default_rng(seed)
    limit = np.sqrt(6.0 / (2 * width))
    weights = [rng.uniform(-limit, limit, (width, width)) for _ in range(depth)]
    scale = 1.0 / np.sqrt(depth) if kind == "scaled residual" else 1.0
    h, pre = rng.standard_normal((checks.check_positive_int("n", n), width)), []
    for w in weights:
        pre.append(h @ w)
        branch = np.maximum(pre[-1], 0.0)
        h = branch if kind == "plain" else h + scale * branch
    grad = rng.standard_normal(h.shape) / np.sqrt(n)
    norms = [np.linalg.norm(grad)]
    for w, a in zip(reversed(weights), reversed(pre), strict=True):
        through_branch = (scale * grad * (a > 0)) @ w.T
        grad = through_branch if kind == "plain" else grad + through_branch
        norms.append(np.linalg.norm(grad))
    return np.array(norms[::-1])


def keras_deep_mlp(kind: str, depth: int = 20, width: int = 64, num_classes: int = 10):
    """A deep MLP of the same three kinds as :func:`stack_gradient_norms`, uncompiled:
    (batch, 784) in [0, 1] -> Dense(width) -> ``depth`` layers Dense(width, relu), plain or
    inside a residual connection (``layers.Add``; "scaled residual" multiplies the branch by
    1 / sqrt(depth) with ``layers.Rescaling``) -> Dense(num_classes) logits."""
    import keras
    from keras import layers

    kind = _stack_kind(kind)
    depth = checks.check_positive_int("depth", depth)
    inputs = keras.Input(shape=(784,), name="pixels")
    h = layers.Dense(width, name="embed")(inputs)
    for index in range(1, depth + 1):
        branch = layers.Dense(width, activation="relu", name=f"dense{index}")(h)
        if kind == "plain":
            h = branch
            continue
        if kind == "scaled residual":
            branch = layers.Rescaling(1.0 / np.sqrt(depth), name=f"scale{index}")(branch)
        h = layers.Add(name=f"add{index}")([h, branch])
    outputs = layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, outputs, name=kind.replace(" ", "_") + f"_{depth}")
