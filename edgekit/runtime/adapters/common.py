"""Functions to work with any model: input size, input tensors, normalization, letterboxing, outputs.

Everything here takes an object with the tf.lite Interpreter API (pycoral's, ai-edge-litert's,
tflite-runtime's or TensorFlow's), so the adapters never care which backend opened the model.
Dequantization lives in exactly one place: `output_tensor`.
"""

import collections

import numpy as np

# pycoral's tolerance for "the model's quantization already is the normalization".
_RAW_TOLERANCE = 1e-5


def input_details(interpreter, key):
    """The value of `key` in the first input's details (e.g. 'shape', 'dtype', 'quantization')."""
    return interpreter.get_input_details()[0][key]


def output_details(interpreter, i):
    """The details dict of output `i`."""
    return interpreter.get_output_details()[i]


def input_size(interpreter):
    """The input's (width, height). Accepts [1, H, W, C] images and [1, H, W] ones (e.g. MNIST LSTMs)."""
    shape = input_details(interpreter, "shape")
    if len(shape) not in (3, 4):
        raise ValueError(f"input shape {list(shape)} is not an image ([1, H, W] or [1, H, W, C])")
    return int(shape[2]), int(shape[1])


def input_channels(interpreter):
    """How many colour channels the input wants: C of [1, H, W, C], or 1 for [1, H, W]."""
    shape = input_details(interpreter, "shape")
    return int(shape[3]) if len(shape) == 4 else 1


def input_tensor(interpreter):
    """A writable view of the first input without its batch axis: [H, W, C] or [H, W]."""
    return interpreter.tensor(input_details(interpreter, "index"))()[0]


def set_input(interpreter, data):
    """Copy `data` (already in the input's dtype and size) into the first input."""
    data = np.asarray(data)
    tensor = input_tensor(interpreter)
    tensor[...] = np.reshape(data, tensor.shape)


def _quantization(interpreter):
    scale, zero_point = input_details(interpreter, "quantization")
    return float(scale), int(zero_point)


def default_normalization(dtype, scale, zero_point):
    """The (mean, std) assumed when the caller knows nothing better.

    A uint8 model is taken to want raw pixels (mean = zero point, std = 1/scale), which is what
    pycoral's examples feed. An int8 model is taken to be the same model shifted by 128, as the TFLite
    converter makes them, so pixel p means int8 value p - 128. A float model gets [-1, 1]
    (mean 127.5, std 127.5), the MobileNet convention.
    """
    dtype = np.dtype(dtype)
    if dtype == np.uint8 and scale:
        return float(zero_point), 1.0 / scale
    if dtype == np.int8 and scale:
        return float(zero_point + 128), 1.0 / scale
    return 127.5, 127.5


def feeds_raw(dtype, scale, zero_point, mean, std):
    """pycoral's rule: the quantization already encodes the normalization, so pixels go in as they are."""
    return (np.dtype(dtype) == np.uint8 and abs(scale * std - 1) < _RAW_TOLERANCE
            and abs(mean - zero_point) < _RAW_TOLERANCE)


def normalize(pixels, dtype, scale=0.0, zero_point=0, mean=None, std=None):
    """Pixels (0..255) -> values of `dtype`: q = (pixel - mean) / (std * scale) + zero_point, clipped.

    A float input (scale 0) gets (pixel - mean) / std. Pure function, so it is testable on its own.
    """
    dtype = np.dtype(dtype)
    if not scale and np.issubdtype(dtype, np.integer):
        # An integer input without quantization (e.g. a uint8 image fed to a Cast) holds real values.
        scale, zero_point = 1.0, 0
    if mean is None or std is None:
        default_mean, default_std = default_normalization(dtype, scale, zero_point)
        mean = default_mean if mean is None else mean
        std = default_std if std is None else std
    pixels = np.asarray(pixels)
    if feeds_raw(dtype, scale, zero_point, mean, std) and pixels.dtype == np.uint8:
        return pixels
    values = (pixels.astype(np.float32) - mean) / std
    if np.issubdtype(dtype, np.floating):
        return values.astype(dtype)
    info = np.iinfo(dtype)
    values = np.round(values / scale + zero_point)
    return np.clip(values, info.min, info.max).astype(dtype)


def set_normalized_input(interpreter, pixels, mean=None, std=None):
    """Normalize pixels (already at the input size) for this model's input and copy them in."""
    scale, zero_point = _quantization(interpreter)
    dtype = input_details(interpreter, "dtype")
    set_input(interpreter, normalize(pixels, dtype, scale, zero_point, mean, std))


def letterbox_size(image_size, target_size):
    """Where an image lands in a letterboxed input: (width, height, scale), aspect ratio kept."""
    width, height = target_size
    w, h = image_size
    scale = min(width / w, height / h)
    # int() truncates like pycoral, but never to an empty image.
    return max(1, int(w * scale)), max(1, int(h * scale)), scale


Letterboxed = collections.namedtuple("Letterboxed", ["canvas", "resized", "scale"])
"""A letterboxed image: the full uint8 canvas, what `resize` returned, and the scale applied."""


def letterbox(image_size, target_size, resize, channels=3):
    """Resize into a zero canvas of `target_size`, top-left aligned (padding bottom/right).

    `resize((w, h))` returns the image at that size as anything numpy can read. The canvas is
    uint8 [H, W, C], or [H, W] when channels is 0. Returns a `Letterboxed`.
    """
    width, height = target_size
    w, h, scale = letterbox_size(image_size, target_size)
    resized = resize((w, h))
    shape = (height, width, channels) if channels else (height, width)
    canvas = np.zeros(shape, dtype=np.uint8)
    canvas[:h, :w] = np.reshape(np.asarray(resized, dtype=np.uint8), canvas[:h, :w].shape)
    return Letterboxed(canvas, resized, scale)


def set_resized_input(interpreter, size, resize, mean=None, std=None):
    """pycoral's set_resized_input: letterbox the image of `size` (w, h) into the input.

    Padding is pixel value 0 (black), normalized like the image, so in the raw case it is pycoral's
    zero fill. Returns, as pycoral does, (what `resize` returned, (scale, scale)); pass the scale
    to detect.get_objects.
    """
    shape = input_details(interpreter, "shape")
    channels = int(shape[3]) if len(shape) == 4 else 0
    boxed = letterbox(size, input_size(interpreter), resize, channels)
    set_normalized_input(interpreter, boxed.canvas, mean, std)
    return boxed.resized, (boxed.scale, boxed.scale)


def dequantize(values, scale, zero_point, dtype=np.float32):
    """Real values of a quantized array, as `dtype` (float64 where errors are summed over many values); an
    array with scale 0 (not quantized) comes back unchanged. Per-channel scales and zero points broadcast
    along the last axis."""
    values = np.asarray(values)
    if not np.any(scale) or not np.issubdtype(values.dtype, np.integer):
        return values
    # int64 first: uint8 minus a zero point must not wrap around.
    offsets = values.astype(np.int64) - np.asarray(zero_point, np.int64)
    return (np.asarray(scale, np.float64) * offsets).astype(dtype)


def output_tensor(interpreter, i):
    """Output `i` as a dequantized copy (float32 when the output is quantized), batch axis kept."""
    details = output_details(interpreter, i)
    raw = interpreter.tensor(details["index"])()
    scale, zero_point = details.get("quantization", (0.0, 0))
    values = dequantize(raw, scale, zero_point)
    # A copy: the interpreter reuses its buffers on the next invoke.
    return values.copy() if values is raw else values
