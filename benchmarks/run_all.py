"""Run every benchmarks/bench_*.py and print their reports as one JSON document (`make bench`).

Each benchmark runs in its own process with this Python, with no arguments, and must print one JSON
document on stdout; whatever it writes on stderr is passed through for people watching. Targets missed
are reported, not failed: the exit code is non-zero only when a benchmark crashed or printed no JSON.

    .venv/bin/python benchmarks/run_all.py [--only NAME ...] [--timeout SECONDS]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_benchmark(script, timeout):
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(script)], cwd=HERE.parent, stdout=subprocess.PIPE,
                              stderr=None, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    elapsed = round(time.perf_counter() - start, 2)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        tail = done.stdout.strip().splitlines()[-3:]
        return {"error": f"exit code {done.returncode}, no JSON on stdout", "stdout_tail": tail,
                "seconds": elapsed}
    if done.returncode != 0:
        return {"error": f"exit code {done.returncode}", "report": report, "seconds": elapsed}
    if isinstance(report, dict):
        report.setdefault("seconds", elapsed)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these (e.g. bench_run)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark [1800]")
    args = parser.parse_args(argv)

    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        wanted = {name[:-3] if name.endswith(".py") else name for name in args.only}
        unknown = wanted - {s.stem for s in scripts}
        if unknown:
            parser.error(f"no such benchmark: {', '.join(sorted(unknown))}")
        scripts = [s for s in scripts if s.stem in wanted]

    results = {}
    for script in scripts:
        print(f"running {script.name} ...", file=sys.stderr, flush=True)
        results[script.stem] = run_benchmark(script, args.timeout)
    failed = sorted(name for name, report in results.items() if isinstance(report, dict) and "error" in report)
    missed = sorted(name for name, report in results.items()
                    if isinstance(report, dict) and report.get("within_target") is False)
    combined = {"python": platform.python_version(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
                "benchmarks": results, "failed": failed, "targets_missed": missed}
    print(json.dumps(combined, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
