"""EfficientDet-Lite detector: EfficientNet-Lite backbone -> BiFPN -> shared heads -> raw per-anchor outputs.

The Keras model returns raw outputs, as training wants them: box regressions [1, A, 4] as (ty, tx, th, tw)
and class logits [1, A, C]. Decoding (anchors.detect here, TFLite_Detection_PostProcess in an exported
model) happens outside. The model carries what the export needs as attributes: `edgekit_anchors`
(normalised yc, xc, h, w), `edgekit_num_classes` and `edgekit_task`.
"""

import re

import keras

from edgekit.models.efficientdet_lite import anchors as anchor_lib
from edgekit.models.efficientdet_lite.bifpn import bifpn
from edgekit.models.efficientdet_lite.heads import detection_heads, flatten_levels
from edgekit.models.efficientdet_lite.presets import ANCHORS_PER_LOCATION, COCO_CLASSES
from edgekit.models.efficientnet_lite.backbone import efficientnet_lite_features
from edgekit.models.registry import model_entry
from edgekit.runtime.tasks import DETECTION

OUTPUT_NAMES = ("box_encodings", "class_logits")
_BACKBONE_LAYER = re.compile(r"^(normalize|stem_|block\d+[a-z]+_)")


def build_detector(variant, input_size, num_classes=COCO_CLASSES, weights=None, batch_size=1, backbone_weights=None,
                   name="efficientdet-lite"):
    """Build an EfficientDet-Lite for raw RGB pixels [0, 255] of shape [batch_size, height, width, 3].

    variant: a presets.Variant; input_size: (height, width). weights: a Keras weights file of this detector
    (no COCO checkpoint is reachable offline). backbone_weights="imagenet": start the backbone from the
    ImageNet classifier (lite0..2 backbones). batch_size 1 keeps shapes static for export; None for training."""
    if isinstance(weights, str) and weights.lower() == "imagenet":
        from edgekit.errors import EdgekitError

        raise EdgekitError(f"{name}: there are no COCO weights here; backbone_weights='imagenet' starts the "
                           "backbone from ImageNet")
    backbone = model_entry(variant.backbone).preset
    height, width = input_size
    images = keras.Input((height, width, 3), batch_size=batch_size, name="images")
    _, endpoints = efficientnet_lite_features(images, backbone.width, backbone.depth, include_head_conv=False)
    features = bifpn([endpoints[level] for level in ("P3", "P4", "P5")], variant.fpn_filters, variant.fpn_cells)
    class_maps, box_maps = detection_heads(features, variant.fpn_filters, variant.head_repeats,
                                           ANCHORS_PER_LOCATION, num_classes)
    # Box regressions first, then class logits: the order edgekit's detection export reads.
    outputs = [flatten_levels(box_maps, 4, OUTPUT_NAMES[0]), flatten_levels(class_maps, num_classes, OUTPUT_NAMES[1])]
    model = keras.Model(images, outputs, name=name.replace("-", "_"))
    model.edgekit_task = DETECTION
    model.edgekit_num_classes = num_classes
    model.edgekit_anchors = anchor_lib.normalized_anchors((height, width), variant.anchor_scale)
    model.edgekit_raw_pixels = True
    if model.output_shape[0][1] != len(model.edgekit_anchors):
        raise AssertionError(f"{name}: {model.output_shape[0][1]} outputs per image but "
                             f"{len(model.edgekit_anchors)} anchors")
    if backbone_weights is not None:
        from edgekit.models import weights as weight_loading

        detection_layers = [layer.name for layer in model.layers if not is_backbone_layer(layer.name)]
        weight_loading.load_weights(model, backbone_weights, model_name=variant.backbone,
                                    allow_missing=detection_layers)
    if weights is not None:
        from edgekit.models import weights as weight_loading

        weight_loading.load_weights(model, weights, model_name=name)
    return model


def restore_attributes(model):
    """Give a zoo detector loaded from a Keras file (`edgekit train`'s `<name>.keras`) the attributes the export
    reads, which a saved file does not keep: its anchors follow from its variant (the model's name), its input
    size and class count from its tensors. Other models are returned unchanged."""
    from edgekit.models.registry import list_models

    variant = model.name.replace("_", "-")
    if tuple(getattr(model, "output_names", ())) != OUTPUT_NAMES or variant not in list_models(DETECTION):
        return model
    height, width = (int(side) for side in model.inputs[0].shape[1:3])
    model.edgekit_task = DETECTION
    model.edgekit_num_classes = int(model.outputs[1].shape[-1])
    model.edgekit_anchors = anchor_lib.normalized_anchors((height, width), model_entry(variant).preset.anchor_scale)
    model.edgekit_raw_pixels = True
    return model


def is_backbone_layer(name):
    """Whether the layer called `name` belongs to the EfficientNet-Lite backbone (else the BiFPN or a head)."""
    return bool(_BACKBONE_LAYER.match(name))


def detect(model, pixels, score_threshold=0.4, iou_threshold=0.5, max_detections=25):
    """Run a zoo detector on one [H, W, 3] image of the model's size (raw pixels); returns normalised
    (ymin, xmin, ymax, xmax) boxes, class ids and scores, best first."""
    import numpy as np

    box_encodings, class_logits = model.predict(np.asarray(pixels, np.float32)[None], verbose=0)
    return anchor_lib.detect(box_encodings[0], class_logits[0], model.edgekit_anchors, score_threshold,
                             iou_threshold, max_detections)
