"""The steps of convert() one at a time, on a tiny Keras model and seeded pixels: the options, loading, the
calibration pictures, the calibrated model's ranges, the statistics cache and the range choice."""

import numpy as np
import pytest

from edgekit.calibration.cache import CalibrationCache
from edgekit.converters import options as conversion_options
from edgekit.converters import quantize, steps
from edgekit.errors import EdgekitError
from edgekit.models.efficientnet_lite import presets

keras = pytest.importorskip("keras")

SIZE = 24


def tiny_model(first=None, channels=3):
    """conv -> average pool -> dense -> softmax, seeded; `first`: a layer put right after the input."""
    keras.utils.set_random_seed(2)
    images = keras.Input((SIZE, SIZE, channels), batch_size=1)
    x = first(images) if first is not None else images
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu6")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, keras.layers.Softmax()(keras.layers.Dense(3)(x)), name="tiny")


def pixels(count=4):
    return np.random.default_rng(0).integers(0, 256, (count, SIZE, SIZE, 3), dtype=np.uint8)


def source_of(model, **keywords):
    options = conversion_options.options_from(keywords)
    return steps.load_source(model, None, None, options.interface, quiet=True), options


# --- options ---------------------------------------------------------------------------------------------

def test_keywords_land_in_their_group():
    options = conversion_options.options_from({"method": "kl", "io": "int8", "max_detections": 5,
                                               "write_float": True})
    assert options.calibration.method == "kl" and options.interface.io == "int8"
    assert options.detection.max_detections == 5 and options.outputs.write_float is True
    assert options.calibration.num_samples == conversion_options.DEFAULTS.calibration.num_samples


def test_default_normalisation_is_the_lite_presets():
    interface = conversion_options.DEFAULTS.interface
    assert (interface.mean, interface.std) == (presets.INPUT_MEAN, presets.INPUT_STD)


def test_unknown_keyword_method_and_io():
    with pytest.raises(TypeError, match="unexpected keyword arguments: methdo"):
        conversion_options.options_from({"methdo": "kl"})
    with pytest.raises(EdgekitError, match="^unknown calibration method 'best': use minmax, percentile, mse, kl$"):
        conversion_options.options_from({"method": "best"})
    with pytest.raises(EdgekitError, match="^unknown --io 'uint16': use uint8 or int8$"):
        conversion_options.options_from({"io": "uint16"})


def test_bias_correction_by_default_for_classifiers_only():
    default = conversion_options.DEFAULTS.calibration
    assert conversion_options.bias_correction_on(default, "classification")
    assert not conversion_options.bias_correction_on(default, "detection")
    assert conversion_options.bias_correction_on(default._replace(bias_correction=True), "detection")
    assert not conversion_options.bias_correction_on(default._replace(bias_correction=False), "classification")


# --- load ------------------------------------------------------------------------------------------------

def test_a_leading_rescaling_becomes_the_normalisation():
    model = tiny_model(keras.layers.Rescaling(1 / 64, offset=-2.0))
    source, _ = source_of(model)
    assert (source.mean, source.std) == (128.0, 64.0)
    assert not any(isinstance(layer, keras.layers.Rescaling) for layer in source.keras.layers)
    assert source.shape == (SIZE, SIZE, 3) and source.task == "classification"
    assert (source.name, source.provenance, source.resize, source.labels) == ("tiny", "keras.Model",
                                                                              "tflite-bilinear", None)


def test_raw_pixel_models_and_asked_normalisation():
    model = tiny_model()
    source, _ = source_of(model, mean=10.0, std=2.0)
    assert (source.mean, source.std) == (10.0, 2.0)
    model.edgekit_raw_pixels = True          # the model normalises raw pixels itself, without a Rescaling
    source, _ = source_of(model, mean=10.0, std=2.0)
    assert (source.mean, source.std) == (0.0, 1.0)


def test_task_resize_and_labels(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("zero\none\ntwo\n")
    source, _ = source_of(tiny_model(), task="detection", labels=str(labels))
    assert source.task == "detection" and source.resize == "bilinear" and source.labels == ["zero", "one", "two"]
    with pytest.raises(EdgekitError, match="^unknown task 'segmentation': use classification, detection$"):
        source_of(tiny_model(), task="segmentation")


def test_only_rgb_models():
    with pytest.raises(EdgekitError, match="^keras.Model: the model takes 1 channels; edgekit converts RGB image"):
        source_of(tiny_model(channels=1))


# --- calibrate -------------------------------------------------------------------------------------------

def test_calibration_pixels_become_model_inputs():
    source, options = source_of(tiny_model())
    calibration = steps.read_calibration(pixels(), source, options.calibration)
    assert calibration.pictures.kind == "arrays" and calibration.summary["used"] == 4
    assert any("fewer than 100" in w for w in calibration.warnings)
    assert len(calibration.batches) == 4 and calibration.batches[0].shape == (1, SIZE, SIZE, 3)
    np.testing.assert_array_equal(calibration.batches[1][0], (pixels()[1].astype(np.float32) - 127) / 128)


def test_calibration_pixels_must_have_the_input_size():
    source, options = source_of(tiny_model())
    with pytest.raises(EdgekitError, match=r"^calibration pixels are \[20, 24, 3\], the model takes \[24, 24, 3\]"):
        steps.read_calibration(pixels()[:, :20], source, options.calibration)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """The tiny model exported, calibrated and read back, with its source and calibration data."""
    source, options = source_of(tiny_model())
    calibration = steps.read_calibration(pixels(), source, options.calibration)
    cache = CalibrationCache()
    with steps.working_folder() as folder, steps.native_output(True):
        exported = steps.export(source, calibration, options.detection, cache, folder, False)
        model_bytes = steps.calibrate(exported, calibration.batches, cache)
    return source, calibration, steps.read_calibrated(model_bytes)


def test_export_then_calibrate_then_reuse(calibrated, tmp_path):
    source, calibration, first = calibrated
    cache = CalibrationCache()
    options = conversion_options.DEFAULTS
    with steps.working_folder() as folder, steps.native_output(True):
        exported = steps.export(source, calibration, options.detection, cache, folder, False)
        assert exported.cached is None and exported.saved_model.startswith(folder)
        model_bytes = steps.calibrate(exported, calibration.batches, cache)
        again = steps.export(source, calibration, options.detection, cache, folder + "-unused", False)
    assert again.cached == model_bytes and again.saved_model is None and again.key == exported.key
    assert steps.calibrate(again, calibration.batches, cache) is again.cached
    assert model_bytes == first.model_bytes                   # calibration is deterministic


def test_recorded_ranges_cover_the_input(calibrated):
    source, _, found = calibrated
    (image,) = found.model.main.inputs
    recorded = found.recorded[image]
    # The calibrator saw (pixel - 127) / 128 of random pixels: nearly the whole pixel range.
    assert -1.0 <= recorded.low < -0.9 and 0.9 < recorded.high <= 1.0


def test_statistics_come_once_then_from_the_cache(calibrated):
    _, calibration, found = calibrated
    cache = CalibrationCache()
    assert steps.collect_statistics(found, calibration, "minmax", cache) == (None, None)
    first = steps.collect_statistics(found, calibration, "kl", cache)
    assert first.cached is False and set(first.statistics.tensors) == set(found.recorded)
    second = steps.collect_statistics(found, calibration, "mse", cache)
    assert second.cached is True and second.statistics is first.statistics


def test_choose_ranges_keeps_the_input_exact_and_protected_tensors_as_recorded(calibrated):
    source, calibration, found = calibrated
    (image,) = found.model.main.inputs
    pixel_range = quantize.pixel_range(source.mean, source.std)
    assert steps.choose_ranges(found, None, "minmax", source) == {image: pixel_range}
    statistics = steps.collect_statistics(found, calibration, "percentile", CalibrationCache()).statistics
    chosen = steps.choose_ranges(found, statistics, "percentile", source)
    assert chosen[image] == pixel_range
    protected = steps.protected_tensors(found.model)
    softmax = next(op for op in found.model.main.operators if op.name == "SOFTMAX")
    assert set(softmax.inputs) | set(found.model.main.outputs) <= protected
    assert not protected & (set(chosen) - {image})
    assert len(chosen) > 1                                # the convolution's output, at least


def test_quantize_int8_writes_the_chosen_ranges(calibrated):
    source, _, found = calibrated
    from edgekit.tflite.model import read_model

    int8 = read_model(steps.quantize_int8(found, {}, source, "uint8"))
    assert int8.input_tensors()[0].type == "UINT8" and int8.output_tensors()[0].type == "UINT8"
    assert all(t.type in ("UINT8", "INT8") or (t.type == "INT32" and t.is_constant) for t in int8.main.tensors)
