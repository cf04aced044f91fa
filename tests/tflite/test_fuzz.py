"""Seeded fuzzing of the reader (and what runs on its output): damaged models give ModelFormatError only.

Mutations of the real test-data models: truncation, flipped bytes, planted offsets/lengths (0, huge,
negative, pointing back into the same table), zeroed and copied ranges. Every case must either parse or
raise ModelFormatError; a parsed model then goes through `check` or `inspect`, which must cope too.
The process's peak memory and the slowest single case are bounded to catch blow-ups and hangs.
"""

import random
import resource
import struct
import time

import pytest

from edgekit.compiler import check, compiled_model
from edgekit.errors import ModelFormatError
from edgekit.tflite.model import read_model

# (file, share of cases): small models get most cases so that thousands fit in well under a minute.
MODELS = [("tools/split_concat.tflite", 0.25), ("keras_lstm_mnist_ptq.tflite", 0.2),
          ("tools/split_concat_edgetpu.tflite", 0.15), ("keras_lstm_mnist_ptq_edgetpu.tflite", 0.15),
          ("invalid_models/model_invoking_error.tflite", 0.15), ("mobilenet_v1_0.25_128_quant.tflite", 0.1)]
CASES = 12000
SEED = 20261125
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
    try:
        model = read_model(data, name=name)
        if model.is_edgetpu_compiled:
            compiled_model.to_document(compiled_model.inspect_model(model))
            return "compiled"
        check.to_document(check.predict(model))
        return "parsed"
    except ModelFormatError:
        return "rejected"


@pytest.mark.timeout(240)
def test_fuzz_reader_check_inspect(coral):
    rng = random.Random(SEED)
    sources = [(name, coral(name).read_bytes(), share) for name, share in MODELS]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes, slowest = {"rejected": 0, "parsed": 0, "compiled": 0}, 0.0
    for name, buf, share in sources:
        for case in range(int(CASES * share)):
            data = mutate(rng, buf)
            start = time.perf_counter()
            try:
                outcomes[exercise(data, name)] += 1
            except Exception as e:          # anything but ModelFormatError is a bug: say how to replay it
                raise AssertionError(f"{name} case {case} (seed {SEED}): {type(e).__name__}: {e}") from e
            slowest = max(slowest, time.perf_counter() - start)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert sum(outcomes.values()) >= CASES - 10
    assert min(outcomes.values()) > 300, outcomes      # every path really exercised
    assert slowest < 5, f"one case took {slowest:.1f} s: a hang in the making"
    assert grown_mb < 300, f"peak memory grew by {grown_mb:.0f} MB"
