"""Cold start to first result: `edgekit run MODEL IMAGE --json --device cpu` in a fresh process, against a
bare script doing the least a user could (import ai_edge_litert, load the model, Pillow open + resize,
invoke, argmax), each in its own subprocess.

The two alternate, one run each in turn, so that drift in the machine's speed falls on both alike; one
untimed run of each first puts the files and the .pyc caches in memory, as they are for anyone who has
run a command before. Time runs from starting the process to its exit, which is when a shell user gets
the prompt back. Both get the same thread count. A bare `python -c pass` is timed too, for scale.

Prints one JSON document on stdout (a short summary goes to stderr unless --json-only) and exits 0: it
reports, it does not judge. Target (issue 2): edgekit / bare <= 1.5x.

    .venv/bin/python benchmarks/bench_coldstart.py [MODEL IMAGE] [-n 10] [--entry module|script] [--json-only]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from shared_testdata import CORAL, ROOT

DEFAULT_MODEL = CORAL / "mobilenet_v2_1.0_224_quant.tflite"
DEFAULT_IMAGE = CORAL / "cat.bmp"
TARGET_RATIO = 1.5

# The baseline: what someone would write with no edgekit, in as few steps as LiteRT allows.
BARE_SCRIPT = """\
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image
model, image, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
interpreter = Interpreter(model_path=model, num_threads=threads)
interpreter.allocate_tensors()
detail = interpreter.get_input_details()[0]
_, height, width, _ = detail["shape"]
pixels = np.asarray(Image.open(image).convert("RGB").resize((width, height), Image.BILINEAR))
interpreter.set_tensor(detail["index"], pixels[None].astype(detail["dtype"]))
interpreter.invoke()
print(int(np.argmax(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))))
"""


def run_once(command):
    """Wall time in ms from process start to exit, with the process's stdout and exit code."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return (time.perf_counter() - start) * 1000, done


def edgekit_top1(done):
    try:
        return json.loads(done.stdout)["results"][0]["classes"][0]["id"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def edgekit_timings(done):
    try:
        return json.loads(done.stdout)["results"][0]["timings_ms"]
    except (ValueError, KeyError, IndexError, TypeError):
        return {}


def bare_top1(done):
    try:
        return int(done.stdout.strip())
    except ValueError:
        return None


def import_times(command):
    """module -> its own import time in ms (`python -X importtime`), for one run of `command`."""
    done = subprocess.run([command[0], "-X", "importtime"] + command[1:], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    times = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, _, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if own.isdigit():
            times[name] = int(own) / 1000
    return times


def extra_imports(edgekit_command, bare_command, top=10):
    """Import time edgekit spends on modules the bare script never loads, summed by top-level package:
    where a cold-start gap comes from. Only possible with the `python -m edgekit` entry."""
    ours, theirs = import_times(edgekit_command), import_times(bare_command)
    by_package = {}
    for name, ms in ours.items():
        if name not in theirs:
            package = name.split(".")[0]
            by_package[package] = by_package.get(package, 0.0) + ms
    ranked = sorted(by_package.items(), key=lambda item: -item[1])
    return {"total_ms": round(sum(by_package.values()), 1),
            "by_package_ms": {name: round(ms, 1) for name, ms in ranked[:top]}}


def stats(times_ms):
    ordered = sorted(times_ms)
    return {"median_ms": round(statistics.median(ordered), 2), "min_ms": round(ordered[0], 2),
            "max_ms": round(ordered[-1], 2), "runs_ms": [round(t, 2) for t in times_ms]}


def measure(model, image, repetitions, threads, entry):
    if entry == "script":
        script = Path(sys.executable).parent / ("edgekit.exe" if os.name == "nt" else "edgekit")
        edgekit = [str(script)]
    else:
        edgekit = [sys.executable, "-m", "edgekit"]
    commands = {
        "edgekit": edgekit + ["run", model, image, "--json", "--device", "cpu", "--threads", str(threads)],
        "bare": [sys.executable, "-c", BARE_SCRIPT, model, image, str(threads)],
        "python_startup": [sys.executable, "-c", "pass"],
    }
    times = {name: [] for name in commands}
    last = {}
    failures = []
    for i in range(repetitions + 1):
        for name, command in commands.items():
            elapsed, done = run_once(command)
            last[name] = done
            if done.returncode != 0:
                failures.append({"run": name, "returncode": done.returncode,
                                 "stderr": done.stderr.strip().splitlines()[-3:]})
            if i > 0:                      # the first round only warms caches
                times[name].append(elapsed)

    report = {name: stats(values) for name, values in times.items()}
    report["edgekit_command"] = " ".join(commands["edgekit"][:1] + ["..."] + commands["edgekit"][-6:])
    report["edgekit_in_process_ms"] = edgekit_timings(last["edgekit"])
    report["top1"] = {"edgekit": edgekit_top1(last["edgekit"]), "bare": bare_top1(last["bare"])}
    if failures:
        report["failures"] = failures[:5]
    report["ratio_edgekit_vs_bare"] = round(report["edgekit"]["median_ms"] / report["bare"]["median_ms"], 4)
    # The same comparison with Python's own start-up taken out of both: the part each program adds.
    startup = report["python_startup"]["median_ms"]
    own_bare = report["bare"]["median_ms"] - startup
    if own_bare > 0:
        report["ratio_edgekit_vs_bare_without_python_startup"] = round(
            (report["edgekit"]["median_ms"] - startup) / own_bare, 4)
    if entry == "module":
        report["edgekit_extra_imports"] = extra_imports(commands["edgekit"], commands["bare"])
    report["within_target"] = report["ratio_edgekit_vs_bare"] <= TARGET_RATIO and not failures
    return report


def summary(report):
    lines = [f"{name:16}median {report[name]['median_ms']:8.1f} ms   min {report[name]['min_ms']:8.1f} ms"
             for name in ("edgekit", "bare", "python_startup")]
    lines.append(f"edgekit / bare: {report['ratio_edgekit_vs_bare']:.3f}x (target <= {TARGET_RATIO}x)")
    extra = report.get("edgekit_extra_imports")
    if extra:
        packages = ", ".join(f"{name} {ms:.0f}" for name, ms in list(extra["by_package_ms"].items())[:6])
        lines.append(f"imports the bare script does without: {extra['total_ms']:.0f} ms ({packages})")
    if "failures" in report:
        lines.append(f"failed runs: {report['failures']}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(DEFAULT_MODEL))
    parser.add_argument("image", nargs="?", default=str(DEFAULT_IMAGE))
    parser.add_argument("-n", "--repetitions", type=int, default=10, help="timed runs of each [10]")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for both [all cores]")
    parser.add_argument("--entry", choices=("module", "script"), default="module",
                        help="start edgekit as `python -m edgekit` or the installed console script")
    parser.add_argument("--json-only", action="store_true", help="no summary on stderr")
    args = parser.parse_args(argv)
    if args.repetitions < 1:
        parser.error("-n must be at least 1")
    threads = args.threads or os.cpu_count() or 1
    model, image = os.path.abspath(args.model), os.path.abspath(args.image)

    report = {"benchmark": "cold start to first result", "model": model, "image": image,
              "repetitions": args.repetitions, "threads": threads, "entry": args.entry,
              "cpu_count": os.cpu_count(), "python": platform.python_version(), "target_ratio": TARGET_RATIO}
    for path in (model, image):
        if not os.path.isfile(path):
            report["error"] = f"{path}: no such file (set EDGEKIT_TESTDATA to the shared testdata folder)"
            print(json.dumps(report, indent=2))
            return 0
    report.update(measure(model, image, args.repetitions, threads, args.entry))
    if not args.json_only:
        print(summary(report), file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
