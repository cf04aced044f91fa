"""EfficientDet-Lite: the detector constants and the registered variants, one function each.

From google/automl `efficientdet` (hparams_config.py, the efficientdet-lite configurations; the EfficientDet
paper, arXiv:1911.09070, for the architecture): an EfficientNet-Lite backbone, levels P3..P7, a BiFPN fusing
by plain sum, class and box heads shared across levels, 3 scales x 3 aspect ratios per location, ReLU6
everywhere. A detector takes its input normalisation and its pretrained backbone weights from its backbone's
registry entry. No Keras here.
"""

from collections import namedtuple

# The backbones' presets first: each detector registration below reads its backbone's entry.
from edgekit.models.efficientnet_lite import presets as _backbones  # noqa: F401
from edgekit.models.registry import BACKBONE_ONLY, model_entry, register_model
from edgekit.runtime.tasks import DETECTION

MIN_LEVEL, MAX_LEVEL = 3, 7
NUM_SCALES, ASPECT_RATIOS = 3, (1.0, 2.0, 0.5)
ANCHORS_PER_LOCATION = NUM_SCALES * len(ASPECT_RATIOS)
COCO_CLASSES = 90
# Class-prediction bias so every anchor starts at probability 0.01 (focal-loss prior).
CLASS_PRIOR = 0.01
BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3

# What a registered variant's builder needs beyond its entry's input size: the backbone's registered name,
# the BiFPN's filters and cells, the heads' repeats and the anchor scale.
Variant = namedtuple("Variant", "backbone fpn_filters fpn_cells head_repeats anchor_scale")


def backbone_weights(backbone):
    """The backbone's pretrained weights as a detector offers them: `backbone_weights=<name>` loads the
    backbone alone; the BiFPN and the heads start untrained (no COCO checkpoint is reachable offline)."""
    return [weights._replace(name=f"backbone_weights={weights.name}", covers=BACKBONE_ONLY,
                             description="detection layers random")
            for weights in backbone.weights.values()]


def efficientdet_lite_variant(*, backbone, image_size, fpn_filters, fpn_cells, head_repeats, anchor_scale,
                              published_params):
    """Decorator: register the decorated builder as a fixed EfficientDet-Lite detector of the 90 COCO classes.

    published_params: trainable parameters as google/automl's efficientdet README publishes them."""
    base = model_entry(backbone)
    return register_model(task=DETECTION, input_size=image_size, num_classes=COCO_CLASSES,
                          published_params=published_params, weights=backbone_weights(base),
                          preset=Variant(backbone, fpn_filters, fpn_cells, head_repeats, anchor_scale),
                          mean=base.mean, std=base.std,
                          description=f"EfficientDet-Lite on {backbone}, BiFPN {fpn_filters}x{fpn_cells}")


def build_variant(entry, num_classes, input_size, weights, **kwargs):
    """Build the detector of a registered variant (`entry`'s preset) for create()."""
    from edgekit.models.efficientdet_lite import detector

    return detector.build_detector(entry.preset, input_size, num_classes=num_classes, weights=weights,
                                   name=entry.name, **kwargs)


@efficientdet_lite_variant(backbone="efficientnet-lite0", image_size=320, fpn_filters=64, fpn_cells=3,
                           head_repeats=3, anchor_scale=3.0, published_params=3_200_000)
def efficientdet_lite0(entry, **kwargs):
    """EfficientDet-Lite0 at 320 pixels."""
    return build_variant(entry, **kwargs)


@efficientdet_lite_variant(backbone="efficientnet-lite1", image_size=384, fpn_filters=88, fpn_cells=4,
                           head_repeats=3, anchor_scale=3.0, published_params=4_200_000)
def efficientdet_lite1(entry, **kwargs):
    """EfficientDet-Lite1 at 384 pixels."""
    return build_variant(entry, **kwargs)


@efficientdet_lite_variant(backbone="efficientnet-lite2", image_size=448, fpn_filters=112, fpn_cells=5,
                           head_repeats=3, anchor_scale=3.0, published_params=5_300_000)
def efficientdet_lite2(entry, **kwargs):
    """EfficientDet-Lite2 at 448 pixels."""
    return build_variant(entry, **kwargs)


@efficientdet_lite_variant(backbone="efficientnet-lite3", image_size=512, fpn_filters=160, fpn_cells=6,
                           head_repeats=4, anchor_scale=4.0, published_params=8_400_000)
def efficientdet_lite3(entry, **kwargs):
    """EfficientDet-Lite3 at 512 pixels."""
    return build_variant(entry, **kwargs)


@efficientdet_lite_variant(backbone="efficientnet-lite3", image_size=640, fpn_filters=200, fpn_cells=6,
                           head_repeats=4, anchor_scale=3.0, published_params=9_300_000)
def efficientdet_lite3x(entry, **kwargs):
    """EfficientDet-Lite3x: Lite3's backbone at 640 pixels, a wider BiFPN and smaller anchors."""
    return build_variant(entry, **kwargs)


@efficientdet_lite_variant(backbone="efficientnet-lite4", image_size=640, fpn_filters=224, fpn_cells=7,
                           head_repeats=4, anchor_scale=4.0, published_params=15_100_000)
def efficientdet_lite4(entry, **kwargs):
    """EfficientDet-Lite4 at 640 pixels."""
    return build_variant(entry, **kwargs)
