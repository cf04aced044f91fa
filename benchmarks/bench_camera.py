"""`edgekit camera` end to end on the CPU, against a bare LiteRT invoke loop in the same run; and a soak.

Throughput: a 640x480 MP4 written here is played through CameraSession (file frames are handed over
losslessly, so every frame is decoded, converted, resized, classified and, in the "overlay" case,
drawn and encoded into an MP4). The baseline is a plain ai-edge-litert interpreter on the same model
and thread count, its input set once, calling invoke() back to back: the rate a loop doing nothing
else reaches. Blocks of each alternate, so drift in the machine's speed falls on both alike; the
ratio is end-to-end FPS / bare invoke FPS (target >= 0.9: capture, preprocessing and drawing
overlapped with inference).

On this kind of machine (2 cores) the interpreter's threads fill both cores, so decode, overlay and
encoding can only take CPU from inference; with a core left to them (`--threads 1` on 2 cores) the
pipeline overlaps fully. Where inference takes no CPU at all (an attached Edge TPU: `--device edgetpu`
with a compiled model; the bare loop then loads libedgetpu's delegate) the target applies as stated.

Soak: 5,000 frames (the video looped) with the overlay, the recorder and the MJPEG server on and one
viewer reading the stream; resident memory (VmRSS) after a warm-up and at the end (target: growth
< 10 MB).

Prints one JSON document on stdout and exits 0: it reports, it does not judge.

    .venv/bin/python benchmarks/bench_camera.py [--model M] [--frames 300] [--rounds 3] [--soak 5000] [--threads N]
        [--device cpu|edgetpu]
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from shared_testdata import CORAL

DEFAULT_MODEL = CORAL / "mobilenet_v2_1.0_224_quant.tflite"
TARGET_RATIO = 0.9
TARGET_GROWTH_MB = 10.0
SOAK_WARMUP = 500
WARMUP = 5  # frames (and invokes) left out of each timed block


def write_video(path, frames, size=(640, 480)):
    """A camera-sized MP4 of the two Coral test pictures, alternating every 30 frames."""
    import cv2
    from PIL import Image

    pictures = [np.asarray(Image.open(CORAL / name).convert("RGB").resize(size))[:, :, ::-1]
                for name in ("cat.bmp", "parrot.jpg")]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size)
    for i in range(frames):
        writer.write(np.ascontiguousarray(pictures[(i // 30) % 2]))
    writer.release()
    return path


def bare_fps(model, threads, count, device="cpu"):
    """Invokes per second of a plain LiteRT interpreter, input set once (with libedgetpu's delegate for
    --device edgetpu)."""
    from ai_edge_litert.interpreter import Interpreter, load_delegate

    delegates = [load_delegate("libedgetpu.so.1")] if device != "cpu" else None
    interpreter = Interpreter(model_path=str(model), num_threads=threads, experimental_delegates=delegates)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.full(detail["shape"], 128, dtype=detail["dtype"]))
    for _ in range(WARMUP):
        interpreter.invoke()
    start = time.perf_counter()
    for _ in range(count):
        interpreter.invoke()
    return count / (time.perf_counter() - start)


def camera_fps(model, video, threads, record_to=None, device="cpu"):
    """Steady frames per second of CameraSession over the video: from frame WARMUP to the last, so the
    model's first (slow) invokes and the thread start-up are left out, as the bare loop's are."""
    from edgekit.runtime.camera import CameraSession

    stamps = []
    session = CameraSession(str(model), str(video), device=device, threads=threads, record=record_to,
                            on_frame=lambda frame, result, fps: stamps.append(time.perf_counter()),
                            notice=lambda message: None)
    session.run()
    steady = stamps[WARMUP:]
    return (len(steady) - 1) / (steady[-1] - steady[0])


def resident_mb():
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def watch(url, samples):
    """Read the MJPEG stream until the server closes it (the soak's end)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            for chunk in iter(lambda: response.read(65536), b""):
                samples["streamed_bytes"] += len(chunk)
    except OSError:
        pass  # the server went away mid-read: the soak is over


def soak(model, video, threads, frames, folder, device="cpu"):
    """RSS after SOAK_WARMUP frames and at the end of `frames` frames, with every output on."""
    from edgekit.runtime.camera import CameraSession

    samples = {"count": 0, "streamed_bytes": 0}

    def on_frame(frame, result, fps):
        samples["count"] += 1
        if samples["count"] == SOAK_WARMUP:
            samples["warm_mb"] = resident_mb()

    session = CameraSession(str(model), str(video), device=device, threads=threads, loop=True, max_frames=frames,
                            record=os.path.join(folder, "soak.mp4"), serve="127.0.0.1:0", on_frame=on_frame,
                            notice=lambda message: None)
    # A browser on the stream for the whole soak, so the JPEG encoding and the server's buffers count.
    viewer = threading.Thread(target=watch, args=(session.server.url + "stream.mjpg", samples), daemon=True)
    viewer.start()
    summary = session.run()
    end_mb = resident_mb()
    viewer.join(10)
    return {"frames": summary.frames, "fps": summary.fps,
            "streamed_mb": round(samples["streamed_bytes"] / 1e6, 1),
            "rss_after_warmup_mb": round(samples["warm_mb"], 1),
            "rss_end_mb": round(end_mb, 1), "growth_mb": round(end_mb - samples["warm_mb"], 2),
            "target_growth_mb": TARGET_GROWTH_MB, "within_target": end_mb - samples["warm_mb"] < TARGET_GROWTH_MB}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--frames", type=int, default=300, help="frames per timed block [300]")
    parser.add_argument("--rounds", type=int, default=3, help="alternating blocks of each [3]")
    parser.add_argument("--soak", type=int, default=5000, help="frames in the soak (0: skip) [5000]")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for both [all cores]")
    parser.add_argument("--device", choices=("cpu", "edgetpu"), default="cpu",
                        help="where both run: edgetpu needs a compiled model and an attached Edge TPU [cpu]")
    args = parser.parse_args(argv)
    threads = args.threads or os.cpu_count() or 1
    report = {"benchmark": "camera end to end vs bare invoke; soak", "model": args.model, "device": args.device,
              "threads": threads,
              "cpu_count": os.cpu_count(), "python": platform.python_version(), "frames_per_block": args.frames,
              "rounds": args.rounds, "target_ratio": TARGET_RATIO}
    if not os.path.isfile(args.model) or not (CORAL / "cat.bmp").is_file():
        report["error"] = f"{args.model} or the Coral pictures are missing (set EDGEKIT_TESTDATA)"
        print(json.dumps(report, indent=2))
        return 0
    if args.device == "edgetpu":
        from edgekit.runtime import edgetpu

        if not (edgetpu.library_available() and edgetpu.list_edge_tpus()):
            what, fix = edgetpu.diagnose("")
            report["error"] = f"--device edgetpu: {what}: {fix}"
            print(json.dumps(report, indent=2))
            return 0
    with tempfile.TemporaryDirectory() as folder:
        video = write_video(Path(folder) / "bench.mp4", args.frames)
        # Each round: bare, headless, bare, overlay; each camera block is compared with the mean of
        # the bare blocks on either side of it, so slow drift of the machine cancels out.
        device = args.device
        bare, headless, overlay = [bare_fps(args.model, threads, args.frames, device)], [], []
        for _ in range(args.rounds):
            headless.append(camera_fps(args.model, video, threads, device=device))
            bare.append(bare_fps(args.model, threads, args.frames, device))
            overlay.append(camera_fps(args.model, video, threads, os.path.join(folder, "out.mp4"), device))
            bare.append(bare_fps(args.model, threads, args.frames, device))
        ratios_headless = [h / ((bare[2 * i] + bare[2 * i + 1]) / 2) for i, h in enumerate(headless)]
        ratios_overlay = [o / ((bare[2 * i + 1] + bare[2 * i + 2]) / 2) for i, o in enumerate(overlay)]
        report.update({
            "bare_invoke_fps": [round(v, 2) for v in bare],
            "camera_fps_headless": [round(v, 2) for v in headless],
            "camera_fps_overlay_and_record": [round(v, 2) for v in overlay],
            "ratio_headless": round(float(np.median(ratios_headless)), 4),
            "ratio_overlay_and_record": round(float(np.median(ratios_overlay)), 4),
            "ratios_headless": [round(v, 4) for v in ratios_headless],
            "ratios_overlay_and_record": [round(v, 4) for v in ratios_overlay],
        })
        report["within_target"] = report["ratio_headless"] >= TARGET_RATIO
        if args.soak:
            report["soak"] = soak(args.model, video, threads, args.soak, folder, device)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
