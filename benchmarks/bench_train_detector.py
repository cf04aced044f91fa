"""`edgekit train efficientdet-lite0` on a composite set of real pixels: accuracy within a CPU time budget (issue 13).

The set comes from `tests/training/box_sets.py` (faces of scikit-image's LFW subset and coins cut from its coins
photo, pasted on other scikit-image photos; train, validation and test use different object instances and
different backgrounds), written as a COCO folder. The run is `edgekit.train.object_detector` then `export`,
exactly what `edgekit train` does, and the figures are its own: test mAP and mAP@0.5 of the float and the int8
models (the int8 one run through the runtime, as `edgekit run` runs it), and training seconds.

Targets (issue 13): EfficientDet-Lite0 at 320 trained in at most 20 minutes on a 2-core CPU reaches int8 mAP@0.5
>= 0.6 on the held-out split, with int8 mAP within 1.5 points of float. The time target is checked against the
run's own training seconds; ratios compare int8 with float from the same run.
Prints one JSON document and exits 0: it reports, it does not judge.

    .venv/bin/python benchmarks/bench_train_detector.py [--train 640] [--epochs 40] [--freeze-backbone] [--quick]
"""

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TARGET_SECONDS = 20 * 60
TARGET_INT8_MAP50 = 0.6
TARGET_MAP_POINTS = 1.5
FULL = {"train": 640, "val": 80, "test": 160, "epochs": 25, "size": 320}
QUICK = {"train": 48, "val": 8, "test": 16, "epochs": 2, "size": 320}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run that only checks the script works")
    for key, value in FULL.items():
        parser.add_argument(f"--{key}", type=int, help=f"[{value}]")
    parser.add_argument("--freeze-backbone", action="store_true", help="train the BiFPN and heads only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="write the set and the trained files here instead of a temporary folder")
    args = parser.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    settings.update({k: v for k, v in vars(args).items() if k in settings and v is not None})
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from edgekit import train
    from tests.training import box_sets

    with tempfile.TemporaryDirectory(prefix="bench_detector_") as scratch:
        root = args.keep or scratch
        begun = time.perf_counter()
        data = box_sets.composite_set(os.path.join(root, "set"), format="coco", train=settings["train"],
                                      val=settings["val"], test=settings["test"], seed=args.seed)
        generated = time.perf_counter() - begun
        trained = train.object_detector(data, "efficientdet-lite0", epochs=settings["epochs"],
                                        input_size=settings["size"], freeze_backbone=args.freeze_backbone,
                                        seed=args.seed, log=lambda line: print(line, file=sys.stderr))
        exported = trained.export(os.path.join(root, "out"), compile=False,
                                  log=lambda line: print(line, file=sys.stderr))
    document = exported.document
    test = document["test"]
    seconds = document["timings"]["train"]
    int8_points = round(100 * (test["float"]["map"] - test["int8"]["map"]), 2)
    report = {"benchmark": "bench_train_detector", "model": "efficientdet-lite0", "cpus": os.cpu_count(),
              "load_average_after": round(os.getloadavg()[0], 2), "quick": args.quick,
              "freeze_backbone": args.freeze_backbone, **settings, "set_seconds": round(generated, 1),
              "train_seconds": seconds, "timings": document["timings"], "best_epoch": document["best_epoch"],
              "float": {k: test["float"][k] for k in ("map", "map50", "per_class")},
              "int8": {k: test["int8"][k] for k in ("map", "map50", "per_class")},
              "history": document["history"],
              "targets": {"train_seconds": {"value": seconds, "target": TARGET_SECONDS,
                                            "met": seconds <= TARGET_SECONDS},
                          "int8_map50": {"value": test["int8"]["map50"], "target": TARGET_INT8_MAP50,
                                         "met": test["int8"]["map50"] >= TARGET_INT8_MAP50},
                          "float_minus_int8_map_points": {"value": int8_points, "target": TARGET_MAP_POINTS,
                                                          "met": int8_points <= TARGET_MAP_POINTS}}}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
