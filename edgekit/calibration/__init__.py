"""Representative data and activation ranges for calibration (may import TensorFlow's runtime, never at import).

  sources   folder (recursive), glob, list file, video (every k-th frame), COCO / YOLO / VOC folders;
            seeded sampling balanced over subfolders
  data      decoding and preprocessing through the runtime's own functions; skipped files; progress bar
  ranges    per-tensor histograms and the minmax / percentile / mse / kl range methods
  cache     CalibrationCache: calibrated models and histograms kept for the next conversion (and on disk)
"""
