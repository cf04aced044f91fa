"""How long `edgekit check` takes on a ~5 MB model, against baselines measured in the same run.

The test data's largest model is 3.6 MB, so the 5 MB model is made here: mobilenet_v1_0.5_160_quant and
mobilenet_v2_1.0_224_quant side by side in one graph (two inputs, two outputs), written to a temp file with
the TFLite schema's object API. Prints one JSON document. Target (issue 3): <= 0.5 s for check.
Baselines: LiteRT interpreter construction, and a full unpack with the schema's object API.

    .venv/bin/python benchmarks/bench_check.py [--repeat N]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from shared_testdata import CORAL

PARTS = ("mobilenet_v1_0.5_160_quant.tflite", "mobilenet_v2_1.0_224_quant.tflite")
TARGET_S = 0.5


def side_by_side(paths, target):
    """One model running every input model's graph next to each other (indices shifted, nothing shared)."""
    from edgekit.tflite.graph_edit import pack, unpack

    models = [unpack(Path(p).read_bytes()) for p in paths]
    merged, graph = models[0], models[0].subgraphs[0]
    for extra in models[1:]:
        buffers, codes, tensors = len(merged.buffers), len(merged.operatorCodes), len(graph.tensors)
        merged.buffers += extra.buffers
        merged.operatorCodes += extra.operatorCodes
        other = extra.subgraphs[0]
        for t in other.tensors:
            t.buffer += buffers
        graph.tensors += other.tensors
        for op in other.operators:
            op.opcodeIndex += codes
            op.inputs = [i + tensors if i >= 0 else i for i in op.inputs]
            op.outputs = [i + tensors for i in op.outputs]
        graph.operators += other.operators
        graph.inputs = list(graph.inputs) + [i + tensors for i in other.inputs]
        graph.outputs = list(graph.outputs) + [i + tensors for i in other.outputs]
    merged.metadata, merged.signatureDefs = None, None
    Path(target).write_bytes(pack(merged))
    return target


def median_s(work, repeat):
    work()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=11)
    args = parser.parse_args()

    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.compiler import check
    from edgekit.tflite.model import read_model

    with tempfile.TemporaryDirectory() as tmp:
        path = side_by_side([CORAL / p for p in PARTS], Path(tmp) / "two_mobilenets.tflite")
        model = read_model(path)
        prediction = check.check_file(path)
        result = {
            "model": "mobilenet_v1_0.5_160_quant + mobilenet_v2_1.0_224_quant (side by side)",
            "size_bytes": path.stat().st_size, "ops": len(prediction.ops),
            "cpu_ops": sum(v.status == "cpu" for v in prediction.ops), "repeat": args.repeat,
            "target_s": TARGET_S,
            "check_s": median_s(lambda: check.check_file(path), args.repeat),
            "predict_only_s": median_s(lambda: check.predict(model), args.repeat),
            "litert_interpreter_s": median_s(lambda: Interpreter(model_path=str(path)), args.repeat),
            "schema_object_api_s": median_s(
                lambda: fb.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0), max(3, args.repeat // 3)),
        }
    result["ratio_vs_interpreter"] = result["check_s"] / result["litert_interpreter_s"]
    result["ratio_vs_object_api"] = result["check_s"] / result["schema_object_api_s"]
    result["within_target"] = result["check_s"] <= TARGET_S
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
