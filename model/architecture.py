"""The emotion network: a compact VGG-style CNN with batch norm at FER2013's full 48x48, sized for a 49-face
batch on 2 CPU cores.

Input: (N, 48, 48, 1) grey values 0..255 (float); output: 7 softmax probabilities. The network holds no
random ops: training views are made outside it (`model.augment`), so the trained classifier is exported as
it is. Its last layer computes logits then a softmax, so a fitted temperature folds into that layer's
weights (`with_temperature`) and every form of the model (Keras, TFLite, live) gives calibrated
probabilities at no cost.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from vocabulary.emotions import FACE_SIZE, NUM_CLASSES

# Channels per stage; each stage ends in a 2x down-sampling. The first stage runs at 48x48, so it is kept
# to one narrow conv: that is where the FLOPs are (see the model card for the measured trade-off).
DEFAULT_WIDTHS = (32, 64, 128, 256)
OUTPUT_LAYER = "emotion"


def _conv_bn_relu(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_classifier(widths: tuple[int, ...] = DEFAULT_WIDTHS, dropout: float = 0.4) -> keras.Model:
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(inputs)
    for stage, filters in enumerate(widths):
        x = _conv_bn_relu(x, filters, f"s{stage}a")
        if stage > 0:  # the first, full-resolution stage gets one conv, the rest two
            x = _conv_bn_relu(x, filters, f"s{stage}b")
        x = layers.MaxPooling2D(name=f"s{stage}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(widths[-1], use_bias=False, name="fc")(x)
    x = layers.BatchNormalization(name="fc_bn")(x)
    x = layers.ReLU(name="fc_relu")(x)
    x = layers.Dropout(dropout / 2, name="dropout2")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name=OUTPUT_LAYER)(x)
    return keras.Model(inputs, outputs, name="emotion_classifier")


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """The same model with softmax(logits / temperature): the output layer's kernel and bias divided by it."""
    calibrated = keras.models.clone_model(model)
    calibrated.set_weights(model.get_weights())
    output = calibrated.get_layer(OUTPUT_LAYER)
    kernel, bias = output.get_weights()
    output.set_weights([np.asarray(kernel) / temperature, np.asarray(bias) / temperature])
    return calibrated
