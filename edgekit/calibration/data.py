"""Calibration pictures, preprocessed exactly as `edgekit run` will preprocess them for the same model.

The runtime's own functions do the work (`images.load_image`, `images.resize`, `common.letterbox`), so
calibration sees the pixels the deployed model will see. The result is a uint8 batch of raw pixels plus
what went wrong on the way (skipped files, with why).
"""

import hashlib
import os
import time
from collections import namedtuple

import numpy as np

from edgekit.calibration.sources import VIDEO_EVERY, CalibrationDataError, find_items, sample_order
from edgekit.errors import EdgekitError
from edgekit.progress import Progress
from edgekit.runtime import images
from edgekit.runtime.adapters import common

# size: (width, height); letterbox: detection's aspect-keeping pad; resize: a RESIZE_METHODS name.
Preprocess = namedtuple("Preprocess", "size resize letterbox")
# pixels: uint8 [N, H, W, 3]; used: the items kept; skipped: [(item, reason)]; digest: identifies the set.
CalibrationSet = namedtuple("CalibrationSet", "source kind pixels used skipped candidates seconds digest")

# How many pictures calibration takes by default, and below how many it warns that ranges may not cover
# what the model will see.
NUM_SAMPLES = 300
FEW_SAMPLES = 100


def prepare(picture, spec):
    """A PIL RGB picture -> uint8 [H, W, 3] at the model's input size, as the runtime would feed it."""
    if spec.letterbox:
        boxed = common.letterbox(picture.size, spec.size, lambda size: images.resize(picture, size, spec.resize))
        return boxed.canvas
    return np.asarray(images.resize(picture, spec.size, spec.resize), dtype=np.uint8)


def _video_frames(path, wanted):
    """Decode a video once, front to back, keeping the wanted frame indices (seeking is slow and inexact)."""
    import cv2
    from PIL import Image

    capture = cv2.VideoCapture(path)
    found, index, last = {}, 0, max(wanted)
    try:
        while index <= last:
            ok = capture.grab()
            if not ok:
                break
            if index in wanted:
                ok, frame = capture.retrieve()
                if ok:
                    found[index] = images.convert(Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)), "RGB")
            index += 1
    finally:
        capture.release()
    return found


def load_set(spec_path, preprocess, num_samples=NUM_SAMPLES, seed=0, video_every=VIDEO_EVERY, progress=None):
    """Find, sample, decode and preprocess up to `num_samples` pictures. Raises when none is usable."""
    if num_samples < 1:
        raise CalibrationDataError("--num-samples must be at least 1")
    start = time.perf_counter()
    source = find_items(spec_path, video_every)
    order = sample_order(source.items, seed)
    bar = progress if progress is not None else Progress(min(num_samples, len(order)), "calibration images")
    frames = {}
    if source.kind == "video":
        frames = _video_frames(source.spec, {item.frame for item in order[:num_samples * 2]})
    pixels, used, skipped = [], [], []
    for item in order:
        if len(used) >= num_samples:
            break
        try:
            if item.frame is not None:
                if item.frame not in frames:
                    raise EdgekitError(f"{item.path}: frame {item.frame} cannot be decoded")
                picture = frames[item.frame]
            else:
                picture = images.load_image(item.path, "RGB")
        except EdgekitError as e:
            skipped.append((item, str(e)))
            continue
        pixels.append(prepare(picture, preprocess))
        used.append(item)
        bar.update()
    bar.close()
    if not used:
        reason = skipped[0][1] if skipped else "no pictures"
        raise CalibrationDataError(f"{spec_path}: none of the {len(skipped)} calibration files could be read "
                                   f"(first: {reason})")
    batch = np.stack(pixels)
    digest = hashlib.sha256(batch.tobytes()).hexdigest()[:16]
    return CalibrationSet(source=str(spec_path), kind=source.kind, pixels=batch, used=used, skipped=skipped,
                          candidates=len(source.items), seconds=time.perf_counter() - start, digest=digest)


def from_arrays(pixels, name="arrays"):
    """A CalibrationSet from uint8 pixels already at the input size (for the Python API and tests)."""
    batch = np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8))
    if batch.ndim != 4:
        raise CalibrationDataError(f"calibration pixels must be [N, H, W, C], not {list(batch.shape)}")
    digest = hashlib.sha256(batch.tobytes()).hexdigest()[:16]
    used = [None] * len(batch)
    return CalibrationSet(source=name, kind="arrays", pixels=batch, used=used, skipped=[],
                          candidates=len(batch), seconds=0.0, digest=digest)


def summary(calibration, num_samples):
    """The calibration part of the report, and the warnings a user should see."""
    warnings = []
    if len(calibration.pixels) < FEW_SAMPLES:
        warnings.append(f"only {len(calibration.pixels)} calibration images (fewer than {FEW_SAMPLES}): ranges may "
                        "not cover what the model will see; give more pictures")
    if calibration.skipped:
        warnings.append(f"{len(calibration.skipped)} calibration files skipped as unreadable "
                        f"(first: {calibration.skipped[0][1]})")
    strata = {}
    for item in calibration.used:
        if item is not None:
            strata[item.stratum or "."] = strata.get(item.stratum or ".", 0) + 1
    pixels = calibration.pixels
    return {"source": calibration.source, "kind": calibration.kind, "candidates": calibration.candidates,
            "requested": num_samples, "used": int(len(pixels)), "skipped": len(calibration.skipped),
            "skipped_files": [{"file": i.path if i else None, "reason": r} for i, r in calibration.skipped[:20]],
            "strata": strata, "seconds": round(calibration.seconds, 3), "digest": calibration.digest,
            "pixel_mean": [round(float(v), 2) for v in pixels.reshape(-1, pixels.shape[-1]).mean(axis=0)],
            "files": [os.fspath(i.path) + (f"#{i.frame}" if i.frame is not None else "")
                      for i in calibration.used[:1000] if i is not None]}, warnings
