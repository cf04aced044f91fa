"""The BiFPN of EfficientDet-Lite: P6/P7 from P5, then cells of top-down and bottom-up fusion.

Lite fuses by plain sum (no learned fusion weights, which quantize badly) and uses ReLU6. Each fused node:
resample every input to the node's size and channels, sum, ReLU6, 3x3 separable conv (with bias), BN.
Resampling as in google/automl: a 1x1 conv + BN only when the channel count differs (so in the first cell
each use of a backbone feature gets its own projection), then a 3x3 stride-2 max pool to go down a level
or a whole-number nearest-neighbour upscale (cropped to odd sizes) to go up.
"""

from keras import layers

from edgekit.models.efficientdet_lite.presets import BN_EPSILON, BN_MOMENTUM, MAX_LEVEL, MIN_LEVEL

# BiFPN nodes in order: (level, inputs). Inputs index the running feature list, which starts as
# P3..P7 (0..4) and grows by each node's output (5, 6, ...): top-down P6', P5', P4', P3'', then
# bottom-up P4'', P5'', P6'', P7''.
NODES = (
    (6, (3, 4)), (5, (2, 5)), (4, (1, 6)), (3, (0, 7)),
    (4, (1, 7, 8)), (5, (2, 6, 9)), (6, (3, 5, 10)), (7, (4, 11)),
)


def batch_norm(name):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def resample(x, filters, target_size, name):
    """Bring x to `filters` channels and `target_size` (height, width)."""
    if x.shape[-1] != filters:
        x = layers.Conv2D(filters, 1, padding="same", name=f"{name}_conv")(x)
        x = batch_norm(f"{name}_bn")(x)
    height, width = x.shape[1:3]
    if (height, width) == tuple(target_size):
        return x
    if height > target_size[0]:
        stride = (height - 1) // target_size[0] + 1
        return layers.MaxPooling2D(stride + 1, stride, padding="same", name=f"{name}_pool")(x)
    # Up a level: a whole-number nearest-neighbour upscale, then a crop when the target is odd (P7 3x3 -> 6x6
    # -> P6 5x5 at 320 pixels). The Edge TPU maps RESIZE_NEAREST_NEIGHBOR only for whole-number factors, and
    # the crop keeps google/automl's sampling (legacy nearest: source row floor(i * in / out)).
    # UpSampling2D is avoided: Keras lowers it to TILE + RESHAPE.
    factor_h, factor_w = -(-target_size[0] // height), -(-target_size[1] // width)
    x = layers.Resizing(height * factor_h, width * factor_w, interpolation="nearest", name=f"{name}_upsample")(x)
    extra_h, extra_w = height * factor_h - target_size[0], width * factor_w - target_size[1]
    if extra_h or extra_w:
        x = layers.Cropping2D(((0, extra_h), (0, extra_w)), name=f"{name}_crop")(x)
    return x


def extra_levels(p5, filters):
    """P6 = maxpool(1x1 conv + BN of P5) and P7 = maxpool(P6), each (s - 1) // 2 + 1 on a side."""
    features = [p5]
    for level in range(6, MAX_LEVEL + 1):
        previous = features[-1]
        size = tuple((s - 1) // 2 + 1 for s in previous.shape[1:3])
        features.append(resample(previous, filters, size, name=f"p{level}"))
    return features[1:]


def bifpn_cell(features, filters, cell):
    """One BiFPN cell over [P3..P7]; returns the new [P3..P7]."""
    nodes = list(features)
    sizes = {level: tuple(f.shape[1:3]) for level, f in zip(range(MIN_LEVEL, MAX_LEVEL + 1), features)}
    outputs = {}
    for number, (level, inputs) in enumerate(NODES):
        name = f"fpn{cell}_node{number}"
        resampled = [resample(nodes[i], filters, sizes[level], name=f"{name}_in{i}") for i in inputs]
        x = layers.Add(name=f"{name}_sum")(resampled)
        x = layers.ReLU(6.0, name=f"{name}_relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=True, name=f"{name}_conv")(x)
        x = batch_norm(f"{name}_bn")(x)
        nodes.append(x)
        outputs[level] = x  # the later (bottom-up) node of a level wins
    return [outputs[level] for level in range(MIN_LEVEL, MAX_LEVEL + 1)]


def bifpn(backbone_features, filters, cells):
    """[P3, P4, P5] from the backbone -> the fused [P3..P7] after `cells` BiFPN cells."""
    features = list(backbone_features) + extra_levels(backbone_features[-1], filters)
    for cell in range(cells):
        features = bifpn_cell(features, filters, cell)
    return features
