"""Class and box heads of EfficientDet-Lite: the same convolutions on every level, batch norm per level.

Sharing the separable convs keeps the heads small; the per-level BN lets each level keep its own
statistics, as in google/automl's ClassNet/BoxNet.
"""

import math

import keras
from keras import layers

from edgekit.models.efficientdet_lite.presets import BN_EPSILON, BN_MOMENTUM, CLASS_PRIOR, MIN_LEVEL


class Head:
    """`repeats` x [3x3 separable conv, BN (per level), ReLU6], then a 3x3 separable conv to
    anchors * outputs_per_anchor channels. Call it on each level's feature map in turn."""

    def __init__(self, name, filters, repeats, outputs, bias_value=0.0):
        self.name, self.repeats = name, repeats
        self.convs = [layers.SeparableConv2D(filters, 3, padding="same", use_bias=True,
                                             depthwise_initializer="variance_scaling",
                                             pointwise_initializer="variance_scaling", name=f"{name}_conv{i}")
                      for i in range(repeats)]
        self.predict = layers.SeparableConv2D(outputs, 3, padding="same", use_bias=True,
                                              depthwise_initializer="variance_scaling",
                                              pointwise_initializer="variance_scaling",
                                              bias_initializer=keras.initializers.Constant(bias_value),
                                              name=f"{name}_predict")

    def __call__(self, x, level):
        for i, conv in enumerate(self.convs):
            x = conv(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                                          name=f"{self.name}_bn{i}_p{level}")(x)
            x = layers.ReLU(6.0, name=f"{self.name}_relu{i}_p{level}")(x)
        return self.predict(x)


def detection_heads(features, filters, repeats, anchors_per_location, num_classes):
    """Per-level head outputs for [P3..P7]: (class maps [1, H, W, anchors * C], box maps [1, H, W, anchors * 4])."""
    # Start every anchor at probability CLASS_PRIOR so early training is not swamped by background.
    prior_bias = -math.log((1 - CLASS_PRIOR) / CLASS_PRIOR)
    class_head = Head("class_net", filters, repeats, anchors_per_location * num_classes, prior_bias)
    box_head = Head("box_net", filters, repeats, anchors_per_location * 4)
    class_maps = [class_head(x, MIN_LEVEL + i) for i, x in enumerate(features)]
    box_maps = [box_head(x, MIN_LEVEL + i) for i, x in enumerate(features)]
    return class_maps, box_maps


def flatten_levels(maps, values_per_anchor, name):
    """Per-level [1, H, W, anchors * V] maps -> one [1, A, V] tensor in anchor order (level, row, column,
    anchor), matching anchors.generate_anchors."""
    flat = [layers.Reshape((-1, values_per_anchor), name=f"{name}_p{MIN_LEVEL + i}")(x) for i, x in enumerate(maps)]
    return layers.Concatenate(axis=1, name=name)(flat)
