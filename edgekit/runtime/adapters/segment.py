"""Functions to work with a semantic segmentation model: a class id per pixel."""

import collections

import numpy as np

from edgekit.runtime.adapters import common

ClassArea = collections.namedtuple("ClassArea", ["id", "fraction"])
"""How much of a mask one class covers: class id (int) and fraction of pixels (0..1)."""


def get_output(interpreter):
    """pycoral's get_output: output 0 without its batch axis ([H, W] ids or [H, W, C] scores)."""
    return common.output_tensor(interpreter, 0)[0]


def get_mask(interpreter):
    """The class mask [H, W] of the last invoke.

    A model ending in ArgMax (uint8/int32/int64 [1, H, W] or [1, H, W, 1]) already gives class ids,
    taken as they are. Otherwise output 0 holds per-class scores [1, H, W, C] and the mask is their
    argmax (dequantizing never changes an argmax, since scales are positive).
    """
    details = common.output_details(interpreter, 0)
    shape = details["shape"]
    if len(shape) == 3 or (len(shape) == 4 and shape[-1] == 1):
        # Class ids are not quantized values, whatever the tensor's quantization says.
        ids = interpreter.tensor(details["index"])()[0]
        return np.array(ids.reshape(ids.shape[:2]))
    if len(shape) != 4:
        raise ValueError(f"segmentation output shape {[int(d) for d in shape]} is neither [1, H, W] nor [1, H, W, C]")
    return np.argmax(get_output(interpreter), axis=-1)


def resize_mask(mask, size):
    """The mask at `size` (width, height), nearest neighbour so ids stay ids."""
    # Index arithmetic rather than PIL: PIL images cannot hold int64 ids.
    mask = np.asarray(mask)
    width, height = size
    rows = (np.arange(height) * mask.shape[0] / height).astype(np.int64)
    cols = (np.arange(width) * mask.shape[1] / width).astype(np.int64)
    return mask[rows[:, None], cols[None, :]]


def class_areas(mask):
    """`ClassArea`s of the classes present in `mask`, largest first (ties: lower id first)."""
    ids, counts = np.unique(np.asarray(mask), return_counts=True)
    total = float(counts.sum()) or 1.0
    order = sorted(range(len(ids)), key=lambda k: (-counts[k], ids[k]))
    return [ClassArea(int(ids[k]), float(counts[k] / total)) for k in order]


def mask_iou(a, b):
    """pycoral's array_iou: pixels where the masks agree / (pixels in a + pixels in b - agreeing ones)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} and {b.shape}")
    agree = int((a == b).sum())
    return agree / (a.size + b.size - agree)
