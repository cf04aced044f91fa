"""Keras to full-int8 TFLite for the Edge TPU: `edgekit convert` and `edgekit.convert(...)`.

    edgekit convert efficientnet-lite0 --weights imagenet --calib photos/ --out out/

Modules (each may import TensorFlow, only when called):
  api                convert(): the steps in order, with their timings; ConversionResult
  options            the options, grouped (calibration, interface, detection, outputs), and their DEFAULTS
  steps              each step of convert() and the named values they pass on
  keras_export       zoo name / Keras file / SavedModel -> Keras model -> fixed-batch SavedModel; folds a
                     leading Rescaling into the input quantization
  quantize           calibrate-only, range edit, mlir_quantize (private TensorFlow API, pinned; smoke-tested)
  bias               empirical bias correction against the float model
  postprocess        TFLite_Detection_PostProcess at the end of a detector
  verify             after conversion: 8-bit everywhere, op versions within compiler 16, CPU ops named
  conversion_report  <name>_report.json and .html (per-tensor int8 error, ranges, mapping, timings)
The metadata entry the runtime reads is `edgekit.tflite.metadata`'s; the command is `edgekit.cli.cmd_convert`.
"""
