"""Seeded fuzzing of the reader (and what runs on its output): damaged models give ModelFormatError only.

Mutations of the real test-data models: truncation, flipped bytes, planted offsets/lengths (0, huge,
negative, pointing back into the same table), zeroed and copied ranges. Every case must parse (and then go
through `check`, or `inspect` when compiled, which must cope too) or be rejected with a one-line
ModelFormatError naming the file; any other exception is a bug. A hang is caught by the test's timeout, and
a blow-up by the bound on the process's peak memory: the reader promises never to allocate more than the
file's own size (edgekit/tflite/model.py), so a corrupt length must not ask for gigabytes. How long the
cases took is reported (pytest's terminal summary), not asserted.
"""

import random
import resource
import struct
import sys
import time

import pytest

from edgekit.compiler import check, compiled_model
from edgekit.errors import ModelFormatError
from edgekit.tflite.model import read_model

# (file, cases): small models get most cases so that thousands fit in well under a minute.
MODELS = [("tools/split_concat.tflite", 3000), ("keras_lstm_mnist_ptq.tflite", 2400),
          ("tools/split_concat_edgetpu.tflite", 1800), ("keras_lstm_mnist_ptq_edgetpu.tflite", 1800),
          ("invalid_models/model_invoking_error.tflite", 1800), ("mobilenet_v1_0.25_128_quant.tflite", 1200)]
PLANNED = sum(cases for _, cases in MODELS)
SEED = 20261125
OUTCOMES = ("rejected", "parsed", "compiled")
# Each outcome must be reached more often than this for its path to count as exercised (seeded: the same
# cases every run).
EXERCISED = 300
MAX_PEAK_GROWTH_MB = 300
# getrusage's ru_maxrss is in kilobytes on Linux and in bytes on macOS (see getrusage(2) on each).
MAXRSS_BYTES = 1 if sys.platform == "darwin" else 1024
INTERESTING = (0, 1, 4, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def mutate(rng, buf):
    buf = bytearray(buf)
    kind = rng.randrange(6)
    if kind == 0:                                  # truncated download
        return bytes(buf[:rng.randrange(len(buf))])
    if kind == 1:                                  # a few flipped bytes
        for _ in range(rng.randint(1, 16)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    elif kind == 2:                                # planted offset / vector length
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(0, len(buf) - 4) & ~3
            value = rng.choice(INTERESTING + (len(buf), pos, rng.getrandbits(32)))
            struct.pack_into("<I", buf, pos, value)
    elif kind == 3:                                # self-referencing offset: a table pointing at itself
        pos = rng.randrange(0, len(buf) - 4) & ~3
        struct.pack_into("<i", buf, pos, rng.choice((0, -4, 4, -pos)))
    elif kind == 4:                                # zeroed range
        start = rng.randrange(len(buf))
        buf[start:start + rng.randint(1, 256)] = bytes(min(256, len(buf) - start))
    else:                                          # a range copied over another
        a, b = rng.randrange(len(buf)), rng.randrange(len(buf))
        n = rng.randint(1, 128)
        chunk = buf[a:a + n]
        buf[b:b + len(chunk)] = chunk
    return bytes(buf[:len(buf)])


def exercise(data, name):
    """What one damaged model comes to: "parsed" or "compiled" (read, then checked or inspected), or
    "rejected" with a clean ModelFormatError. Any other exception propagates: it is a bug."""
    try:
        model = read_model(data, name=name)
        if model.is_edgetpu_compiled:
            compiled_model.to_document(compiled_model.inspect_model(model))
            return "compiled"
        check.to_document(check.predict(model))
        return "parsed"
    except ModelFormatError as e:
        message = str(e)
        assert name in message and "\n" not in message, f"not a one-line message naming the file: {message!r}"
        return "rejected"


def peak_memory_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * MAXRSS_BYTES / (1 << 20)


@pytest.mark.timeout(240)
def test_fuzz_reader_check_inspect(coral, record_property):
    rng = random.Random(SEED)
    sources = [(name, coral(name).read_bytes(), cases) for name, cases in MODELS]
    peak_before, began = peak_memory_mb(), time.perf_counter()
    outcomes, slowest, run = dict.fromkeys(OUTCOMES, 0), 0.0, 0
    for name, buf, cases in sources:
        for case in range(cases):
            data = mutate(rng, buf)
            start = time.perf_counter()
            try:
                outcome = exercise(data, name)
            except Exception as e:          # anything but a clean ModelFormatError is a bug: say how to replay it
                raise AssertionError(f"{name} case {case} (seed {SEED}): {type(e).__name__}: {e}") from e
            outcomes[outcome] += 1
            run += 1
            slowest = max(slowest, time.perf_counter() - start)
    grown_mb = peak_memory_mb() - peak_before
    for key, value in (("cases", run), ("slowest_case_s", round(slowest, 3)),
                       ("total_s", round(time.perf_counter() - began, 1)), ("peak_memory_growth_mb", round(grown_mb))):
        record_property(key, value)
    assert run == PLANNED
    assert all(outcomes[kind] > EXERCISED for kind in OUTCOMES), outcomes
    assert grown_mb < MAX_PEAK_GROWTH_MB, f"peak memory grew by {grown_mb:.0f} MB"
