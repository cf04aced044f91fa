"""Throughput of a model cut into two CPU segments and pipelined (`PipelinedModelRunner`), against the same model
run whole, and the runner's own cost per inference, measured in the same run.

The model (Coral's mobilenet_v2_1.0_224_quant by default) is cut into 2 segments by `edgekit segment --by latency`
(`edgekit.compiler.partition.segment_model`: from the parameter split, the cut moved until the two segments'
one-thread CPU latencies are close), and opened through `runtime.segmented.open_segments` with one thread per
interpreter. Every figure below uses one-thread interpreters:
- whole: the whole model, one inference after the other (set_tensor, invoke, get_tensor), over a stream of
  `-n` different inputs;
- pipelined: the same stream pushed from a producer thread through `PipelinedModelRunner`, results popped in
  the main thread; per inference = the stream's time / its length (the first result's latency included);
- ceiling: two threads invoking the two segments in loops at once, nothing passed between them: what two cores
  give when nothing else costs anything (how much of the gap the machine leaves);
- overhead: one input at a time, pushed then popped (so the segments never overlap), against the same two
  interpreters chained by hand (set_tensor, invoke, get_tensor, set_tensor, invoke, get_tensor); alternating
  one by one, the difference of their medians is what the queues and threads cost per inference. The same is
  measured on a small model (mobilenet_v1_0.25_128), where invoke is short and the difference stands out.
Settings alternate, `--rounds` times (the median of each round's ratio counts), so drift in the machine falls
on all alike; the load average is reported, since other processes take cores from the pipeline and not from
the whole model's one thread. Pipelined results are checked bit for bit against the whole model's.

Prints one JSON document on stdout and exits 0: it reports, it does not judge. Targets (issue 15): pipelined
throughput >= 1.7x the whole model's; runner overhead < 0.2 ms per inference.

    .venv/bin/python benchmarks/bench_pipeline.py [-n 200] [--rounds 5] [--model PATH] [--json-only]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time

import numpy as np

from shared_testdata import CORAL

DEFAULT_MODEL = CORAL / "mobilenet_v2_1.0_224_quant.tflite"
SMALL_MODEL = CORAL / "mobilenet_v1_0.25_128_quant.tflite"
TARGET_THROUGHPUT_RATIO = 1.7
TARGET_OVERHEAD_MS = 0.2


def quiet(message):
    """open_model's notices are for people at a terminal; this report is the JSON."""


def cut(model, folder):
    """Segment `model` into 2 by measured CPU latency: (partition.SegmentedModel, opened segments)."""
    from edgekit.compiler.partition import segment_model
    from edgekit.runtime.segmented import open_segments

    segmented = segment_model(str(model), 2, folder, by="latency")
    return segmented, open_segments(segmented.files, device="cpu", num_threads=1, notice=quiet)


def whole_interpreter(model):
    from edgekit.runtime.interpreter import open_model

    return open_model(str(model), device="cpu", num_threads=1, notice=quiet).interpreter


def stream_inputs(interpreter, count, seed=0):
    """`count` different inputs for `interpreter`'s one input: {name: array}."""
    (detail,) = interpreter.get_input_details()
    rng = np.random.default_rng(seed)
    info = np.iinfo(detail["dtype"])
    return [{detail["name"]: rng.integers(info.min, info.max, detail["shape"], dtype=detail["dtype"],
                                          endpoint=True)} for _ in range(count)]


def run_whole(interpreter, inputs):
    """(ms per inference, outputs) of the whole model over the stream, one after the other."""
    (source,) = interpreter.get_input_details()
    targets = interpreter.get_output_details()
    outputs = []
    start = time.perf_counter()
    for feed in inputs:
        interpreter.set_tensor(source["index"], feed[source["name"]])
        interpreter.invoke()
        outputs.append({d["name"]: interpreter.get_tensor(d["index"]) for d in targets})
    return (time.perf_counter() - start) * 1000.0 / len(inputs), outputs


def run_pipelined(interpreters, inputs):
    """(ms per inference, outputs) of the stream through a PipelinedModelRunner fed by a producer thread."""
    from edgekit.runtime.pipelining import PipelinedModelRunner

    outputs = []
    with PipelinedModelRunner(interpreters) as runner:
        runner.set_input_queue_size(2)

        def produce():
            for feed in inputs:
                runner.push(feed)
            runner.push({})

        producer = threading.Thread(target=produce)
        start = time.perf_counter()
        producer.start()
        while (result := runner.pop()) is not None:
            outputs.append(result)
        elapsed = time.perf_counter() - start
        producer.join()
    return elapsed * 1000.0 / len(inputs), outputs


def run_ceiling(interpreters, count):
    """ms per inference when each segment's interpreter invokes `count` times in its own thread, all at once."""
    barrier = threading.Barrier(len(interpreters) + 1)

    def loop(interpreter):
        barrier.wait()
        for _ in range(count):
            interpreter.invoke()

    threads = [threading.Thread(target=loop, args=(i,)) for i in interpreters]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return (time.perf_counter() - start) * 1000.0 / count


def by_hand(interpreters, feed):
    """One inference through the segments chained by hand, tensors passed by name."""
    tensors = dict(feed)
    for interpreter in interpreters:
        for d in interpreter.get_input_details():
            interpreter.set_tensor(d["index"], tensors[d["name"]])
        interpreter.invoke()
        tensors.update({d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()})
    return tensors


def measure_overhead(interpreters, inputs):
    """(median ms by hand, median ms through the runner one at a time), alternating inference by inference."""
    from edgekit.runtime.pipelining import PipelinedModelRunner

    hand_ms, runner_ms = [], []
    with PipelinedModelRunner(interpreters) as runner:
        for feed in inputs[:5]:  # warm both paths up
            by_hand(interpreters, feed)
            runner.push(feed)
            runner.pop()
        for feed in inputs:
            start = time.perf_counter()
            by_hand(interpreters, feed)
            hand_ms.append((time.perf_counter() - start) * 1000.0)
            start = time.perf_counter()
            runner.push(feed)
            runner.pop()
            runner_ms.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(hand_ms), statistics.median(runner_ms)


def identical(a, b):
    return len(a) == len(b) and all(x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
                                    for x, y in zip(a, b))


def overhead_report(interpreters, inputs, rounds):
    pairs = [measure_overhead(interpreters, inputs) for _ in range(rounds)]
    hand = statistics.median(p[0] for p in pairs)
    runner = statistics.median(p[1] for p in pairs)
    return {"by_hand_median_ms": round(hand, 4), "runner_one_at_a_time_median_ms": round(runner, 4),
            "overhead_ms": round(runner - hand, 4),
            "overhead_ms_each_round": [round(p[1] - p[0], 4) for p in pairs]}


def measure(model, count, rounds):
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as folder:
        segmented, opened = cut(model, folder)
        interpreters = opened.interpreters
        whole = whole_interpreter(model)
        inputs = stream_inputs(whole, count)
        run_whole(whole, inputs[:10])  # warm-up: the first invokes pay for set-up
        run_pipelined(interpreters, inputs[:10])
        whole_ms, pipelined_ms, ceiling_ms, same = [], [], [], True
        for _ in range(rounds):
            ms, expected = run_whole(whole, inputs)
            whole_ms.append(ms)
            ms, got = run_pipelined(interpreters, inputs)
            pipelined_ms.append(ms)
            same = same and identical(got, expected)
            ceiling_ms.append(run_ceiling(interpreters, count))
        overhead = overhead_report(interpreters, inputs, rounds)

        small = {}
        if SMALL_MODEL.is_file():
            small_folder = os.path.join(folder, "small")
            _, small_opened = cut(SMALL_MODEL, small_folder)
            small_inputs = stream_inputs(small_opened.interpreters[0], count, seed=1)
            small = dict(model=str(SMALL_MODEL), **overhead_report(small_opened.interpreters, small_inputs, rounds))

    whole_median, pipelined_median = statistics.median(whole_ms), statistics.median(pipelined_ms)
    ceiling_median = statistics.median(ceiling_ms)
    # Each round's two figures were measured seconds apart: their ratio suffers less from the machine's drift
    # than a ratio of medians taken from different rounds.
    ratios = [w / p for w, p in zip(whole_ms, pipelined_ms)]
    ratio = statistics.median(ratios)
    report = {
        "split": {"by": segmented.by, "cuts": segmented.cuts, "segment_cpu_latency_ms": segmented.latency_ms,
                  "parameter_bytes": segmented.parameter_bytes, "candidates_timed": segmented.measured},
        "whole_ms_per_inference": round(whole_median, 4),
        "pipelined_ms_per_inference": round(pipelined_median, 4),
        "ceiling_ms_per_inference": round(ceiling_median, 4),
        "throughput_ratio": round(ratio, 4),
        "throughput_ratio_each_round": [round(r, 4) for r in ratios],
        "ceiling_ratio": round(statistics.median(w / c for w, c in zip(whole_ms, ceiling_ms)), 4),
        "pipelined_vs_ceiling": round(statistics.median(c / p for c, p in zip(ceiling_ms, pipelined_ms)), 4),
        "rounds_ms": {"whole": [round(v, 4) for v in whole_ms], "pipelined": [round(v, 4) for v in pipelined_ms],
                      "ceiling": [round(v, 4) for v in ceiling_ms]},
        "outputs_identical_to_whole": same,
        "overhead": overhead,
        "overhead_small_model": small or None,
    }
    report["within_target"] = {"throughput": ratio >= TARGET_THROUGHPUT_RATIO,
                               "overhead": overhead["overhead_ms"] < TARGET_OVERHEAD_MS}
    return report


def summary(report):
    lines = [f"cut at {report['split']['cuts']} by {report['split']['by']}: segments "
             f"{report['split']['segment_cpu_latency_ms']} ms on one thread each",
             f"whole model, one thread:      {report['whole_ms_per_inference']:.3f} ms per inference",
             f"pipelined, 2 segments:        {report['pipelined_ms_per_inference']:.3f} ms per inference "
             f"({report['throughput_ratio']:.2f}x, target >= {TARGET_THROUGHPUT_RATIO}x)",
             f"two bare invoke loops at once: {report['ceiling_ms_per_inference']:.3f} ms "
             f"({report['ceiling_ratio']:.2f}x: the machine's ceiling now; load {report['load_average']})",
             f"runner overhead, one at a time: {report['overhead']['overhead_ms']:.3f} ms per inference "
             f"(target < {TARGET_OVERHEAD_MS} ms)"]
    if report["overhead_small_model"]:
        lines.append(f"  on {os.path.basename(report['overhead_small_model']['model'])}: "
                     f"{report['overhead_small_model']['overhead_ms']:.3f} ms")
    lines.append(f"pipelined outputs identical to the whole model's: {report['outputs_identical_to_whole']}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="a CPU .tflite with one input "
                                                                    "[Coral's mobilenet_v2_1.0_224_quant]")
    parser.add_argument("-n", "--inputs", type=int, default=200, help="inputs in each stream [200]")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; the median counts [5]")
    parser.add_argument("--json-only", action="store_true", help="no summary on stderr")
    args = parser.parse_args(argv)
    if args.inputs < 10 or args.rounds < 1:
        parser.error("-n must be at least 10 and --rounds at least 1")

    report = {"benchmark": "two CPU segments pipelined vs the whole model, one thread per interpreter",
              "model": args.model, "inputs": args.inputs, "rounds": args.rounds, "threads_per_interpreter": 1,
              "cpu_count": os.cpu_count(), "python": platform.python_version(),
              "load_average": [round(v, 2) for v in os.getloadavg()],
              "target_throughput_ratio": TARGET_THROUGHPUT_RATIO, "target_overhead_ms": TARGET_OVERHEAD_MS}
    if not os.path.isfile(args.model):
        report["error"] = f"{args.model}: no such file (set EDGEKIT_TESTDATA to the shared testdata folder)"
        print(json.dumps(report, indent=2))
        return 0
    report.update(measure(args.model, args.inputs, args.rounds))
    report["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    if not args.json_only:
        print(summary(report), file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
