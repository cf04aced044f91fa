"""How fast edgekit's pure-Python reader parses a model, against baselines measured in the same run.

Prints one JSON document. Target (issue 3): mobilenet_v2_1.0_224_quant parsed in <= 50 ms. Baselines: the
LiteRT interpreter's construction on the same file (what a runtime pays anyway) and a full unpack with the
TFLite schema's generated object API (the flatbuffers package's reader). Ratios < 1 mean edgekit is faster.

    .venv/bin/python benchmarks/bench_reader.py [MODEL.tflite] [--repeat N]
"""

import argparse
import json
import os
import statistics
import time

from shared_testdata import CORAL

DEFAULT_MODEL = CORAL / "mobilenet_v2_1.0_224_quant.tflite"
TARGET_MS = 50.0


def median_ms(work, repeat):
    work()                                   # warm the page cache and imports outside the timing
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(DEFAULT_MODEL))
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    from edgekit.tflite.model import read_model

    result = {"model": args.model, "size_bytes": os.path.getsize(args.model), "repeat": args.repeat,
              "target_ms": TARGET_MS}
    result["edgekit_read_model_ms"] = median_ms(lambda: read_model(args.model), args.repeat)
    try:
        from ai_edge_litert import schema_py_generated as fb
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:                      # no LiteRT here: report edgekit alone
        fb = Interpreter = None
    if Interpreter is not None:
        result["litert_interpreter_ms"] = median_ms(lambda: Interpreter(model_path=args.model), args.repeat)

        def object_api():
            with open(args.model, "rb") as f:
                fb.ModelT.InitFromPackedBuf(bytearray(f.read()), 0)

        result["schema_object_api_ms"] = median_ms(object_api, max(3, args.repeat // 3))
        result["ratio_vs_interpreter"] = result["edgekit_read_model_ms"] / result["litert_interpreter_ms"]
        result["ratio_vs_object_api"] = result["edgekit_read_model_ms"] / result["schema_object_api_ms"]
    result["within_target"] = result["edgekit_read_model_ms"] <= TARGET_MS
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
