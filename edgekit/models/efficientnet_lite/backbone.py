"""The EfficientNet-Lite feature extractor in Keras 3: normalisation, stem, MBConv stages, head conv.

Layer names follow Keras applications (`block2a_expand_conv`, ...) so weights map by name: the ImageNet
reader, `.weights.h5` files and the detector's backbone all meet on these names.
"""

import keras
from keras import layers

from edgekit.models.efficientnet_lite.presets import (BN_EPSILON, BN_MOMENTUM, DROP_CONNECT, FEATURE_STAGES,
                                                      HEAD_FILTERS, INPUT_MEAN, INPUT_STD, STEM_FILTERS,
                                                      scaled_stages)

def conv_initializer():
    """The reference initialiser: He-normal on fan-out for convolutions (truncated like Keras applications).
    A new instance for each layer: Keras 3 gives every call of one unseeded instance the same values, so a
    shared instance would start same-shaped layers with identical kernels."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="truncated_normal")


def block_prefix(stage, repeat):
    return f"block{stage + 1}{chr(ord('a') + repeat)}_"


def batch_norm(name):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def relu6(name):
    # ReLU6 rather than swish: it quantizes to a clamp and maps on the Edge TPU (HARD_SWISH does not).
    return layers.ReLU(6.0, name=name)


def normalize(images):
    """Raw RGB pixels [0, 255] -> (x - 127) / 128, inside the model so a converted model takes raw pixels."""
    return layers.Rescaling(1.0 / INPUT_STD, offset=-INPUT_MEAN / INPUT_STD, name="normalize")(images)


def mbconv_block(x, in_filters, stage, prefix, stride, drop_rate):
    """Inverted residual without squeeze-excite: [expand 1x1] -> depthwise kxk -> project 1x1 [+ input]."""
    inputs = x
    expanded = in_filters * stage.expansion
    if stage.expansion != 1:
        x = layers.Conv2D(expanded, 1, padding="same", use_bias=False, kernel_initializer=conv_initializer(),
                          name=prefix + "expand_conv")(x)
        x = batch_norm(prefix + "expand_bn")(x)
        x = relu6(prefix + "expand_relu")(x)
    x = layers.DepthwiseConv2D(stage.kernel, stride, padding="same", use_bias=False,
                               depthwise_initializer=conv_initializer(), name=prefix + "dwconv")(x)
    x = batch_norm(prefix + "dw_bn")(x)
    x = relu6(prefix + "dw_relu")(x)
    x = layers.Conv2D(stage.filters, 1, padding="same", use_bias=False, kernel_initializer=conv_initializer(),
                      name=prefix + "project_conv")(x)
    x = batch_norm(prefix + "project_bn")(x)
    if stride == 1 and in_filters == stage.filters:
        if drop_rate > 0:
            # Drop-connect: drop the whole residual branch per sample while training; identity at inference.
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=prefix + "drop")(x)
        x = layers.Add(name=prefix + "add")([x, inputs])
    return x


def block_layout(width, depth):
    """[(stage index, repeat, stage, stride, in_filters)] for every block, in order."""
    layout, in_filters = [], STEM_FILTERS
    for index, stage in enumerate(scaled_stages(width, depth)):
        for repeat in range(stage.repeats):
            layout.append((index, repeat, stage, stage.stride if repeat == 0 else 1, in_filters))
            in_filters = stage.filters
    return layout


def efficientnet_lite_features(images, width, depth, include_head_conv=True, drop_connect=DROP_CONNECT):
    """Apply the network to an image tensor of raw pixels.

    Returns (output, endpoints): output is the head conv's (or, without it, the last stage's) feature map;
    endpoints maps "P3", "P4", "P5" to the outputs of stages 3, 5 and 7 (strides 8, 16, 32)."""
    x = normalize(images)
    # Stem and head are not width-scaled in Lite (fixed 32 and 1280 filters).
    x = layers.Conv2D(STEM_FILTERS, 3, 2, padding="same", use_bias=False, kernel_initializer=conv_initializer(),
                      name="stem_conv")(x)
    x = batch_norm("stem_bn")(x)
    x = relu6("stem_relu")(x)
    layout = block_layout(width, depth)
    wanted = {stage: level for level, stage in FEATURE_STAGES.items()}
    endpoints = {}
    for number, (index, repeat, stage, stride, in_filters) in enumerate(layout):
        rate = drop_connect * number / len(layout)
        x = mbconv_block(x, in_filters, stage, block_prefix(index, repeat), stride, rate)
        if index in wanted and repeat == stage.repeats - 1:
            endpoints[wanted[index]] = x
    if include_head_conv:
        x = layers.Conv2D(HEAD_FILTERS, 1, padding="same", use_bias=False, kernel_initializer=conv_initializer(),
                          name="head_conv")(x)
        x = batch_norm("head_bn")(x)
        x = relu6("head_relu")(x)
    return x, endpoints


def build_backbone(width, depth, input_size, batch_size=1, name="efficientnet_lite_backbone"):
    """A keras.Model from raw pixels to the P3, P4, P5 feature maps (no head conv), e.g. for detection."""
    images = keras.Input((*input_size, 3), batch_size=batch_size, name="images")
    _, endpoints = efficientnet_lite_features(images, width, depth, include_head_conv=False)
    return keras.Model(images, [endpoints[level] for level in ("P3", "P4", "P5")], name=name)
