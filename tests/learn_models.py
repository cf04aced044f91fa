"""Models for on-device learning tests, converted once per pytest session and shared by every test file that
imports them: EfficientNet-Lite0 with ImageNet weights at 224 pixels, as `edgekit convert --embedding` (the
embedding extractor, output [1, 1280]) and `edgekit convert --imprinting` (that extractor with pycoral's
imprinting head and ImageNet's 1000 classes) write it, calibrated on real photos.

A test helper (not a conftest): import the builders or the fixtures,

    from learn_models import embedding_model_path, imprinting_model_path   # session fixtures

    def test_something(imprinting_model_path): ...

or call `embedding_model(tmp_path_factory)` / `imprinting_model(tmp_path_factory)` from a fixture of your own.
A conversion takes tens of seconds on two cores, so each is made once per session (cached by the session's
base temporary folder) and both share one calibration cache: the second reuses the first's calibrated model
and histograms. No edgetpu_compiler runs. Tests are skipped when Keras or the zoo's Lite0 weights are
missing.
"""


import pytest
from photos import CORAL_PHOTOS, PHOTOS, write_photos

MODEL = "efficientnet-lite0"
INPUT_SIZE = 224
EMBEDDING_DIM = 1280
IMAGENET_CLASSES = 1000
_CONVERTED = {}     # (session base folder, learning output) -> ConversionResult


def _session_folder(tmp_path_factory):
    """One folder per session for the photos, the calibration cache and the models."""
    root = tmp_path_factory.getbasetemp() / "learn_models"
    if not (root / "photos").is_dir():
        write_photos(root / "photos", PHOTOS, CORAL_PHOTOS)
    return root


def conversion(tmp_path_factory, learning):
    """The ConversionResult of `edgekit convert efficientnet-lite0 --weights imagenet --<learning>` ("embedding"
    or "imprinting"), made once per session."""
    key = (str(tmp_path_factory.getbasetemp()), learning)
    if key not in _CONVERTED:
        pytest.importorskip("keras")
        from edgekit.calibration.cache import CalibrationCache
        from edgekit.converters import api
        from edgekit.models.weights import WeightsError

        root = _session_folder(tmp_path_factory)
        try:
            _CONVERTED[key] = api.convert(MODEL, str(root / "photos"), root / learning, weights="imagenet",
                                          learning=learning, compile=False,
                                          cache=CalibrationCache(root / "calibration_cache"))
        except WeightsError as e:
            pytest.skip(f"the zoo cannot build {MODEL} with ImageNet weights here: {e}")
    return _CONVERTED[key]


def embedding_model(tmp_path_factory):
    """Path of the int8 embedding extractor (output uint8 [1, 1280], metadata task "embedding")."""
    return _path(conversion(tmp_path_factory, "embedding"))


def imprinting_model(tmp_path_factory):
    """Path of the int8 imprinting model (pycoral's contract, output uint8 [1, 1000], ImageNet labels)."""
    return _path(conversion(tmp_path_factory, "imprinting"))


def calibration_folder(tmp_path_factory):
    """The folder of photos the models were calibrated on."""
    return _session_folder(tmp_path_factory) / "photos"


def _path(result):
    from pathlib import Path

    return Path(result.int8_path)


@pytest.fixture(scope="session")
def embedding_model_path(tmp_path_factory):
    return embedding_model(tmp_path_factory)


@pytest.fixture(scope="session")
def imprinting_model_path(tmp_path_factory):
    return imprinting_model(tmp_path_factory)
