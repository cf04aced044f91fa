"""Keras to full-int8 TFLite for the Edge TPU: `edgekit convert` and `edgekit.convert(...)`.

    edgekit convert efficientnet-lite0 --weights imagenet --calib photos/ --out out/

Modules (each may import TensorFlow, only when called):
  api          convert(): the order of work, caches, atomic writes; ConversionResult
  source       zoo name / Keras file / SavedModel -> Keras model -> fixed-batch SavedModel; folds a leading
               Rescaling into the input quantization
  quantize     calibrate-only, range edit, mlir_quantize (private TensorFlow API, pinned; smoke-tested)
  bias         optional empirical bias correction against the float model
  postprocess  TFLite_Detection_PostProcess at the end of a detector
  metadata     the "edgekit" metadata entry (and sidecar) the runtime reads
  checks       after conversion: 8-bit everywhere, op versions within compiler 16, CPU ops named
  report       <name>_report.json and .html (per-tensor int8 error, ranges, mapping, timings)
  commands     the click command
"""
