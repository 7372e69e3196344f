"""The emotion network: a compact VGG-style CNN with batch norm, sized for a 49-face batch on 2 CPU cores.

Augmentation lives in a separate block that only the training model wraps, so the exported classifier
holds no random ops. Input: (N, 48, 48, 1) grey values 0..255 (float); output: 7 softmax probabilities.

The network first averages 2x2 pixels and works at 24x24: the Training faces carry nothing finer (see
`model.sharpness`), and a quarter of the pixels is a quarter of the cost, in training and live.

`export_graph` rewrites the shipped model for TFLite: blur, rescaling and 2x2 averaging are all linear, so
they fold into one 24x48 matrix applied to the rows and the columns of a face (`BlurHalve`). In LiteRT on
2 threads that took a 49-face batch from 18.6 to 14.8 ms in float32 and from 6.2 to 3.4 ms with int8
weights: the 29-tap blur with mirrored borders ran outside XNNPACK's fast paths.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from model.data import FACE_SIZE
from model.emotions import NUM_CLASSES
from model.sharpness import blur_matrix, gaussian_kernel

# Channels per stage; each stage ends in a 2x down-sampling. The first stage runs at the highest
# resolution, so it is kept narrow: that is where the FLOPs are.
DEFAULT_WIDTHS = (32, 64, 128, 256)


def _conv_bn_relu(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


@keras.saving.register_keras_serializable(package="classpulse")
class SharpnessMatch(layers.Layer):
    """A fixed separable Gaussian blur with mirrored borders (the same filter as `model.sharpness.gaussian_blur`)."""

    def __init__(self, sigma: float, **kwargs):
        kwargs.setdefault("trainable", False)  # a saved config carries it back in
        super().__init__(**kwargs)
        self.sigma = float(sigma)

    def call(self, images):
        if self.sigma <= 0:
            return images
        kernel = gaussian_kernel(self.sigma)
        radius = len(kernel) // 2
        padded = keras.ops.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="reflect")
        rows = keras.ops.conv(padded, keras.ops.convert_to_tensor(kernel.reshape(-1, 1, 1, 1)), padding="valid")
        return keras.ops.conv(rows, keras.ops.convert_to_tensor(kernel.reshape(1, -1, 1, 1)), padding="valid")

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma}


class BlurHalve(layers.Layer):
    """SharpnessMatch, an affine rescaling and 2x2 average pooling as one linear map: y = M x M^T * scale + offset,
    M being the blur's matrix followed by the pairwise average. Adding the offset after M is exact because
    every row of M sums to 1 (blurring and averaging keep a flat face flat). Built by `export_graph` only."""

    def __init__(self, sigma: float, scale: float, offset: float, **kwargs):
        super().__init__(trainable=False, **kwargs)
        blur = blur_matrix(sigma, FACE_SIZE)
        halve = np.kron(np.eye(FACE_SIZE // 2), [[0.5, 0.5]])
        self._columns = (halve @ blur).T.astype(np.float32)
        self._scale, self._offset = float(scale), float(offset)

    def call(self, images):
        x = keras.ops.reshape(images, (-1, FACE_SIZE, FACE_SIZE))
        x = keras.ops.transpose(keras.ops.matmul(x, self._columns * self._scale), (0, 2, 1))
        x = keras.ops.transpose(keras.ops.matmul(x, self._columns), (0, 2, 1))
        return keras.ops.expand_dims(x, -1) + self._offset


def export_graph(model: keras.Model) -> keras.Model:
    """The shipped model (`build_inference_model`) with its input stage folded into one BlurHalve layer:
    the same function, cheaper in LiteRT. The classifier's own layers (and weights) follow unchanged."""
    _, scale, half, *rest = model.get_layer("emotion_classifier").layers
    if not (
        isinstance(scale, layers.Rescaling)
        and isinstance(half, layers.AveragePooling2D)
        and tuple(half.pool_size) == tuple(half.strides) == (2, 2)
    ):
        raise ValueError("export_graph needs a classifier that starts with Rescaling, then a 2x2 average")
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    sigma = model.get_layer("sharpness_match").sigma
    x = BlurHalve(sigma, scale.scale, scale.offset, name="blur_halve")(inputs)
    for layer in rest:
        x = layer(x)
    return keras.Model(inputs, x, name="emotion_model_export")


def build_classifier(widths: tuple[int, ...] = DEFAULT_WIDTHS, dropout: float = 0.4) -> keras.Model:
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(inputs)
    x = layers.AveragePooling2D(2, name="half")(x)
    for stage, filters in enumerate(widths):
        x = _conv_bn_relu(x, filters, f"s{stage}a")
        if stage > 0:  # the first, widest-image stage gets one conv, the rest two
            x = _conv_bn_relu(x, filters, f"s{stage}b")
        x = layers.MaxPooling2D(name=f"s{stage}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(widths[-1], use_bias=False, name="fc")(x)
    x = layers.BatchNormalization(name="fc_bn")(x)
    x = layers.ReLU(name="fc_relu")(x)
    x = layers.Dropout(dropout / 2, name="dropout2")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="emotion_classifier")


def build_augmenter(seed: int) -> keras.Sequential:
    """Views a 48x48 face can plausibly take: mirrored, a little shifted, turned, scaled, partly hidden,
    a little softer or harsher."""
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed + 1),
            layers.RandomRotation(0.05, fill_mode="reflect", seed=seed + 2),
            layers.RandomZoom((-0.15, 0.1), fill_mode="reflect", seed=seed + 3),
            layers.RandomErasing(factor=0.5, scale=(0.02, 0.15), fill_value=127.0, seed=seed + 4),
            # Blur and contrast jitter: the live faces, blurred to match, never match the Training faces
            # exactly, so the network should not depend on one exact blur or contrast.
            layers.RandomContrast(0.2, seed=seed + 5),
            layers.RandomGaussianBlur(factor=0.5, kernel_size=5, sigma=(0.1, 1.0), seed=seed + 6),
        ],
        name="augment",
    )


def build_training_model(classifier: keras.Model, seed: int) -> keras.Model:
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    return keras.Model(inputs, classifier(build_augmenter(seed)(inputs)), name="training_model")


def build_inference_model(classifier: keras.Model, blur_sigma: float) -> keras.Model:
    """The shipped model: live faces blurred to the Training faces' sharpness, then the classifier."""
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    matched = SharpnessMatch(blur_sigma, name="sharpness_match")(inputs)
    return keras.Model(inputs, classifier(matched), name="emotion_model")
