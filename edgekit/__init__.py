"""edgekit: Keras EfficientNet-Lite / EfficientDet-Lite to the Coral Edge TPU, and a runtime to run them."""

__version__ = "0.1.0"


def __getattr__(name):
    # `edgekit.convert` imports the converter (and TensorFlow) only when first used, so that importing
    # edgekit for the runtime stays light. A CalibrationCache kept across calls saves calibration passes.
    if name in ("convert", "ConversionResult", "CalibrationCache"):
        from edgekit.converters import api

        return getattr(api, name)
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")
