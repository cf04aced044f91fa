"""Full-integer post-training quantization through the converter's calibrate-then-quantize path.

Three steps instead of one `convert()`, so that ranges can be edited in between:
  1. `calibrate`: the converter with `_experimental_calibrate_only` returns a float model in which every
     activation records its calibrated [min, max] (Tensor.quantization.min / .max);
  2. `set_ranges`: edit those ranges (graph input: the exact pixel range; others: the chosen method);
  3. `quantize`: `mlir_quantize` turns the calibrated model into the int8 model `convert()` would give.
These are the two halves of what `TFLiteConverter._quantize` does itself (tensorflow/lite/python/lite.py):
it stops after calibrating under `_experimental_calibrate_only`, and otherwise hands the calibrated model to
`mlir_quantize` with `fully_quantize` left False. Both are private TensorFlow API, which is why TensorFlow is
pinned (pyproject's `convert` extra) and tests/converters keep a smoke test of this path. What the arguments
need on the pinned TensorFlow: bytes, not bytearray; `inference_type` as the types_pb2 enum (tf.int8 is read
as 16-bit); `fully_quantize=False`, since True ignores a uint8 I/O request.
"""

from collections import namedtuple

import numpy as np

from edgekit.tflite.graph_edit import litert_schema, pack, unpack

IO_TYPES = ("uint8", "int8")
# name/low/high of one activation range recorded by the calibrator.
RecordedRange = namedtuple("RecordedRange", "name low high")


def _converter(saved_model_dir):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=["serving_default"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def float_model(saved_model_dir):
    """The float TFLite twin (baseline for accuracy, same preprocessing)."""
    return bytes(_converter(saved_model_dir).convert())


def calibrate(saved_model_dir, batches):
    """Float model bytes with every activation's calibrated range recorded. `batches`: float32 [1, H, W, C]s."""
    import tensorflow as tf

    converter = _converter(saved_model_dir)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    # Recorded here, applied in `quantize`; set anyway so the calibrator prepares an integer-I/O model.
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    converter.representative_dataset = lambda: ([b] for b in batches)
    converter._experimental_calibrate_only = True   # private: see the module docstring
    return bytes(converter.convert())


def _tf_type(name):
    import tensorflow as tf

    return {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}[name]


def quantize(calibrated, input_type="uint8", output_type="uint8"):
    """The full-integer model from a calibrated one (ranges possibly edited). I/O: uint8, int8 or float32."""
    from tensorflow.compiler.mlir.lite import types_pb2
    from tensorflow.lite.python import convert as tf_convert

    return bytes(tf_convert.mlir_quantize(bytes(calibrated), disable_per_channel=False, fully_quantize=False,
                                          inference_type=types_pb2.QUANTIZED_INT8,
                                          input_data_type=_tf_type(input_type),
                                          output_data_type=_tf_type(output_type)))


def recorded_ranges(model):
    """{tensor index: RecordedRange} of the main subgraph's calibrated tensors (a read_model `Model`)."""
    found = {}
    for t in model.main.tensors:
        q = t.quantization
        if q.min is not None and q.max is not None and q.min.size == 1 and not t.is_constant:
            found[t.index] = RecordedRange(t.name, float(q.min[0]), float(q.max[0]))
    return found


def set_ranges(calibrated, ranges):
    """Calibrated model bytes with the given {tensor index: (low, high)} written into the main subgraph."""
    model = unpack(calibrated)
    tensors = model.subgraphs[0].tensors
    for index, (low, high) in ranges.items():
        q = tensors[index].quantization
        if q is None:
            q = tensors[index].quantization = litert_schema().QuantizationParametersT()
        q.min = np.array([low], np.float32)
        q.max = np.array([high], np.float32)
    return pack(model)


def pixel_range(mean, std):
    """The model-input values raw pixels 0..255 become: with Lite's 127/128 that is [-127/128, 1], which
    quantizes to scale 1/128 and zero point 127 (uint8), so pixels feed in unchanged."""
    return (0.0 - mean) / std, (255.0 - mean) / std


def to_model_input(pixels, mean, std):
    """uint8 [N, H, W, C] pixels -> the float32 [1, H, W, C] batches the Keras model takes."""
    values = (np.asarray(pixels, np.float32) - np.float32(mean)) / np.float32(std)
    return [values[i:i + 1] for i in range(len(values))]


def int8_batch(pixels, dtype, scale, zero_point, mean, std):
    """uint8 [H, W, C] pixels -> the [1, H, W, C] batch of an integer model whose input has this `dtype` and
    quantization, as the runtime feeds it (raw for uint8 when the quantization is the normalisation)."""
    from edgekit.runtime.adapters import common

    return common.normalize(pixels, dtype, scale, zero_point, mean, std)[None]


class native_output_silenced:
    """Send the C++ converter's prints (written straight to file descriptors 1 and 2, past Python's
    sys.stdout) to a temporary file, so `--json` output stays one JSON document; `captured` keeps them."""

    def __enter__(self):
        import os
        import sys
        import tempfile

        sys.stdout.flush()
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile()
        self._saved = [os.dup(1), os.dup(2)]
        os.dup2(self._file.fileno(), 1)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        import os
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for fd in self._saved:
            os.close(fd)
        self._file.seek(0)
        self.captured = self._file.read().decode("utf-8", "replace")
        self._file.close()
        return False
