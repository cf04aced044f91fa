"""Every zoo variant builds to spec: parameter count, output shapes, anchors, fixed batch, Lite's layer choices.

Classifier counts are the registry's: computed from the reference architecture (tensorflow/tpu
`models/official/efficientnet/lite`), BatchNorm's 4 values per channel and the 1000-class dense layer included.
Detector counts are compared twice: all weights (BatchNorm moving statistics included) and trainable weights
only, which is what the published 3.2M..15.1M figures count (google/automl counts trainable variables).
"""

import numpy as np
import pytest
from zoo_reference import ANCHOR_TOTALS, CLASSIFIERS, DETECTORS

from edgekit import models

keras = pytest.importorskip("keras")

# Variants built once (and kept for the export tests); the rest are built, counted and dropped.
KEPT = ("efficientnet-lite0", "efficientdet-lite0")


def build(zoo_models, name):
    if name in KEPT:
        return zoo_models(name)
    keras.backend.clear_session()
    return models.create(name)


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_the_zoo_lists_every_variant():
    assert models.list_models("classification") == CLASSIFIERS
    assert models.list_models("detection") == DETECTORS
    assert models.list_models() == CLASSIFIERS + DETECTORS


@pytest.mark.slow
@pytest.mark.parametrize("name", models.list_models())
def test_variant_builds_to_spec(zoo_models, name):
    entry = models.model_entry(name)
    model = build(zoo_models, name)
    height, width = entry.input_size
    assert model.input_shape == (1, height, width, 3), "fixed batch of 1 for export"
    assert model.edgekit_task == entry.task and model.edgekit_raw_pixels
    layer_types = {type(layer).__name__ for layer in model.layers}
    assert "GlobalAveragePooling2D" not in layer_types and "UpSampling2D" not in layer_types
    relus = [layer for layer in model.layers if type(layer).__name__ == "ReLU"]
    assert relus and all(float(layer.max_value) == 6.0 for layer in relus), "ReLU6 everywhere"
    assert not any(getattr(layer, "activation", None) not in (None, keras.activations.linear)
                   for layer in model.layers if type(layer).__name__ in ("Conv2D", "DepthwiseConv2D",
                                                                        "SeparableConv2D")), "no fused swish"
    normalize = model.get_layer("normalize")
    # The model normalises as its registry entry says (test_zoo_registry pins the entry to (x - 127) / 128).
    assert normalize.scale == pytest.approx(1 / entry.std)
    assert normalize.offset == pytest.approx(-entry.mean / entry.std)

    if entry.task == "classification":
        assert model.output_shape == (1, 1000)
        assert abs(model.count_params() - entry.published_params) <= 0.005 * entry.published_params
        assert "SqueezeExcite" not in str(layer_types) and "Multiply" not in layer_types, "no squeeze-excite"
        pool = model.get_layer("avg_pool")
        assert tuple(pool.pool_size) == tuple(model.get_layer("head_relu").output.shape[1:3])
        assert model.get_layer("stem_conv").filters == 32 and model.get_layer("head_conv").filters == 1280
    else:
        anchors = ANCHOR_TOTALS[name]
        assert model.output_shape == [(1, anchors, 4), (1, anchors, 90)]
        assert model.edgekit_anchors.shape == (anchors, 4) and model.edgekit_num_classes == 90
        # The Edge TPU maps nearest-neighbour upscales by whole-number factors only (odd sizes are cropped).
        for layer in model.layers:
            if isinstance(layer, keras.layers.Resizing):
                (h, w), (out_h, out_w) = layer.input.shape[1:3], layer.output.shape[1:3]
                assert out_h % h == 0 and out_w % w == 0, f"{layer.name}: {h}x{w} -> {out_h}x{out_w}"
        published = entry.published_params
        assert abs(trainable_count(model) - published) <= 0.05 * published
        assert abs(model.count_params() - published) <= 0.05 * published


def test_stage_table_matches_the_spec():
    from edgekit.models.efficientnet_lite.presets import scaled_stages

    # Stage outputs (repeats x filters) and block counts per variant, by the reference lite builder's rules.
    expected = {
        "efficientnet-lite0": ("1x16 2x24 2x40 3x80 3x112 4x192 1x320", 16),
        "efficientnet-lite1": ("1x16 3x24 3x40 4x80 4x112 5x192 1x320", 21),
        "efficientnet-lite2": ("1x16 3x24 3x48 4x88 4x120 5x208 1x352", 21),
        "efficientnet-lite3": ("1x24 3x32 3x48 5x96 5x136 6x232 1x384", 24),
        "efficientnet-lite4": ("1x24 4x32 4x56 6x112 6x160 8x272 1x448", 30),
    }
    for name, (table, blocks) in expected.items():
        preset = models.model_entry(name).preset
        stages = scaled_stages(preset.width, preset.depth)
        assert " ".join(f"{s.repeats}x{s.filters}" for s in stages) == table, name
        assert sum(s.repeats for s in stages) == blocks


def test_rounding_rules():
    from edgekit.models.efficientnet_lite.presets import round_filters, round_repeats

    assert round_filters(32, 1.0) == 32 and round_filters(16, 1.2) == 24  # never more than 10% down
    assert round_filters(40, 1.1) == 48 and round_filters(80, 1.1) == 88 and round_filters(4, 1.0) == 8
    assert round_repeats(2, 1.1) == 3 and round_repeats(3, 1.0) == 3 and round_repeats(4, 1.8) == 8


def test_compound_scaling():
    from edgekit.models.efficientnet_lite.presets import ALPHA_DEPTH, BETA_WIDTH, GAMMA_RESOLUTION, compound_scaling

    assert compound_scaling(0) == (1.0, 1.0, 224)
    width, depth, resolution = compound_scaling(1)
    assert (width, depth) == pytest.approx((1.1, 1.2)) and resolution == 256  # 224 * 1.15 = 257.6
    # FLOPs grow by alpha * beta^2 * gamma^2, about 2, per unit of phi.
    assert ALPHA_DEPTH * BETA_WIDTH ** 2 * GAMMA_RESOLUTION ** 2 == pytest.approx(2.0, abs=0.1)


@pytest.mark.slow
def test_custom_scaling_equals_the_named_variant():
    lite1_like = models.create("efficientnet-lite", width=1.0, depth=1.1, resolution=240)
    assert lite1_like.input_shape == (1, 240, 240, 3)
    assert lite1_like.count_params() == 5_470_344  # efficientnet-lite1, counted
    by_phi = models.create("efficientnet-lite", phi=0.5, num_classes=10)
    assert by_phi.input_shape == (1, 240, 240, 3) and by_phi.output_shape == (1, 10)


def test_custom_scaling_needs_arguments():
    from edgekit.errors import EdgekitError

    with pytest.raises(EdgekitError, match="phi"):
        models.create("efficientnet-lite")
    with pytest.raises(EdgekitError, match="not both"):
        models.create("efficientnet-lite", phi=1, width=1.1, depth=1.2)


@pytest.mark.slow
def test_backbone_endpoints_have_strides_8_16_32():
    from edgekit.models.efficientnet_lite.backbone import build_backbone

    p3, p4, p5 = build_backbone(1.0, 1.0, (224, 224)).outputs
    assert [tuple(t.shape) for t in (p3, p4, p5)] == [(1, 28, 28, 40), (1, 14, 14, 112), (1, 7, 7, 320)]


@pytest.mark.slow
def test_detector_input_size_and_classes_can_change():
    model = models.create("efficientdet-lite0", num_classes=3, input_size=256)
    assert model.input_shape == (1, 256, 256, 3)
    anchors = (32 * 32 + 16 * 16 + 8 * 8 + 4 * 4 + 2 * 2) * 9
    assert model.output_shape == [(1, anchors, 4), (1, anchors, 3)] and model.edgekit_num_classes == 3
    prior = model.get_layer("class_net_predict").bias.numpy()
    assert np.allclose(1 / (1 + np.exp(-prior)), 0.01), "class bias starts every anchor at probability 0.01"


@pytest.mark.slow
def test_a_training_build_takes_any_batch():
    model = models.create("efficientnet-lite0", num_classes=5, batch_size=None, classifier_activation=None)
    assert model.input_shape == (None, 224, 224, 3)
    logits = model(np.zeros((2, 224, 224, 3), np.float32), training=True)
    assert tuple(logits.shape) == (2, 5)


@pytest.mark.slow
def test_models_count_builds_and_counts():
    from edgekit.models.catalog import count_parameters

    total, trainable = count_parameters("efficientnet-lite0")
    assert total == 4_694_024 and trainable < total  # BatchNorm moving statistics are not trainable
