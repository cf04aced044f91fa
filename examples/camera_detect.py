"""Live object detection from a camera, a video file or a stream: boxes, FPS, a recording, a preview page.

A small program on edgekit's public API, in the shape of pycoral's detect examples, for SSD-style
models that end in TFLite_Detection_PostProcess (e.g. ssd_mobilenet_v2_coco_quant_postprocess, or an
EfficientDet-Lite exported by `edgekit convert`). Frames are grabbed in a thread, the newest is
detected, boxes and an FPS bar are drawn, and the result goes to an MP4 and/or a browser page.

Run it (from the repository root, after `pip install -e '.[camera]'`):

    python examples/camera_detect.py \\
        --model ssd_mobilenet_v2_coco_quant_postprocess_edgetpu.tflite \\
        --labels coco_labels.txt --source /dev/video0 --serve 127.0.0.1:8080 --record detections.mp4

(the model and labels are those of Coral's test data, https://github.com/google-coral/test_data), then
open http://127.0.0.1:8080/. --source takes a camera index, /dev/videoN, a video file, an image folder
or an rtsp:// / http:// URL. Ctrl-C stops it and finishes the recording; one JSON line per frame goes to
stdout with --json.
"""

import argparse
import json
import sys

from edgekit.runtime.camera import (FpsMeter, FrameGrabber, MjpegServer, Recorder, annotate_frame, make_prepare,
                                    parse_address, parse_source)
from edgekit.runtime.interpreter import open_model
from edgekit.runtime.labels import read_label_file
from edgekit.runtime.pipeline import Runner, clipped_box


def object_json(obj, runner, size):
    """One detected object as `edgekit run --json` reports it: named, its box clipped to the picture."""
    box = clipped_box(obj.bbox, size)
    return {"id": obj.id, "label": runner.label(obj.id), "score": round(obj.score, 6),
            "bbox": [round(v, 2) for v in box]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="Detection .tflite (compiled or not)")
    parser.add_argument("--labels", help="Label file")
    parser.add_argument("--source", default="0", help="Camera index, /dev/videoN, file, folder or URL")
    parser.add_argument("--threshold", type=float, default=0.4, help="Lowest score to draw")
    parser.add_argument("--serve", default="", help="HOST:PORT of a preview page, e.g. 127.0.0.1:8080")
    parser.add_argument("--record", help="Write the annotated frames to this .mp4")
    parser.add_argument("--max-frames", type=int, default=0, help="Stop after this many frames (0: never)")
    parser.add_argument("--json", action="store_true", help="One JSON line per frame on stdout")
    args = parser.parse_args()

    opened = open_model(args.model)
    runner = Runner(opened, task="detection", labels=read_label_file(args.labels) if args.labels else None,
                    threshold=args.threshold)
    grabber = FrameGrabber(parse_source(args.source), prepare=make_prepare(runner)).start()
    server = MjpegServer(*parse_address(args.serve)).start() if args.serve else None
    recorder = Recorder(args.record, grabber.fps) if args.record else None
    if server:
        print(f"preview at {server.url}", flush=True)

    meter, count = FpsMeter(), 0
    try:
        for frame in grabber.frames():
            result = runner.run_loaded(frame.prepared)
            meter.tick()
            count += 1
            # result.objects: pycoral's Object(id, score, bbox) tuples, boxes in the frame's pixels.
            if args.json:
                objects = [object_json(o, runner, result.size) for o in result.objects]
                print(json.dumps({"frame": frame.index, "time": round(frame.time, 3), "latency_ms": result.latency_ms,
                                  "objects": objects}), flush=True)
            else:
                names = ", ".join(f"{runner.label(o.id)} {o.score:.2f}" for o in result.objects) or "-"
                print(f"frame {frame.index}: {names}  ({result.latency_ms:.1f} ms, {meter.fps:.1f} FPS)")
            watched = server is not None and server.wanted()  # someone has the page open
            if watched or recorder:
                image = annotate_frame(frame.image, result, runner.labels, meter.fps, grabber.dropped)
                if recorder:
                    recorder.write(image)
                if watched:
                    server.publish(image, fps=meter.fps, latency_ms=result.latency_ms, frame=frame.index)
            if args.max_frames and count >= args.max_frames:
                break
    except KeyboardInterrupt:
        pass
    finally:
        grabber.close()  # joins the capture thread, which must not outlive the program
        saved = recorder.close() if recorder else None  # the MP4 becomes playable here
        if server:
            server.close()
    print(f"{count} frames, {grabber.dropped} stale frames dropped" + (f", recorded to {saved}" if saved else ""),
          file=sys.stderr)


if __name__ == "__main__":
    main()
