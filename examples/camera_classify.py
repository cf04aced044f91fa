"""Live image classification from a camera, a video file or a stream, with a browser preview.

A small program on edgekit's public API, in the shape of pycoral's classify examples: open the model
(Edge TPU if one is attached, else its CPU twin), grab frames in a thread, classify the newest one,
draw the top classes and an FPS bar, and stream the result as MJPEG to a page.

Run it (from the repository root, after `pip install -e '.[camera]'`):

    python examples/camera_classify.py \\
        --model mobilenet_v2_1.0_224_quant_edgetpu.tflite --labels imagenet_labels.txt \\
        --source 0 --serve 127.0.0.1:8080

(the model and labels are those of Coral's test data, https://github.com/google-coral/test_data), then
open http://127.0.0.1:8080/ in a browser. --source takes a camera index, /dev/videoN, a video file, an
image folder or an rtsp:// / http:// URL. Ctrl-C stops it. `edgekit camera` does the same with
recording, reconnects and JSON output.
"""

import argparse

from edgekit.runtime.camera import (FpsMeter, FrameGrabber, MjpegServer, annotate_frame, make_prepare,
                                    parse_address, parse_source)
from edgekit.runtime.interpreter import open_model
from edgekit.runtime.labels import read_label_file
from edgekit.runtime.pipeline import Runner


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="Classification .tflite (compiled or not)")
    parser.add_argument("--labels", help="Label file")
    parser.add_argument("--source", default="0", help="Camera index, /dev/videoN, file, folder or URL")
    parser.add_argument("--serve", default="127.0.0.1:8080", help="HOST:PORT of the preview page ('' for none)")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.1)
    parser.add_argument("--max-frames", type=int, default=0, help="Stop after this many frames (0: never)")
    args = parser.parse_args()

    opened = open_model(args.model)
    runner = Runner(opened, task="classification", labels=read_label_file(args.labels) if args.labels else None,
                    top_k=args.top_k, threshold=args.threshold)
    # The grabber resizes each frame for the model in its own thread, while the last one is classified.
    grabber = FrameGrabber(parse_source(args.source), prepare=make_prepare(runner)).start()
    server = None
    if args.serve:
        server = MjpegServer(*parse_address(args.serve)).start()
        print(f"preview at {server.url}")

    meter, count = FpsMeter(), 0
    try:
        for frame in grabber.frames():
            result = runner.run_loaded(frame.prepared)
            meter.tick()
            count += 1
            # result.classes: pycoral's Class(id, score) tuples, best first; the runner's labels name them.
            best = result.classes[0] if result.classes else None
            print(f"frame {frame.index}: " + (f"{runner.label(best.id)} {best.score:.2f}" if best else "-") +
                  f"  ({result.latency_ms:.1f} ms, {meter.fps:.1f} FPS)")
            if server and server.wanted():  # draw only while someone has the page open
                server.publish(annotate_frame(frame.image, result, runner.labels, meter.fps, grabber.dropped),
                               fps=meter.fps, latency_ms=result.latency_ms, frame=frame.index)
            if args.max_frames and count >= args.max_frames:
                break
    except KeyboardInterrupt:
        pass
    finally:
        grabber.close()  # joins the capture thread, which must not outlive the program
        if server:
            server.close()
    print(f"{count} frames, {grabber.dropped} stale frames dropped, source ended: {grabber.ended or 'stopped'}")


if __name__ == "__main__":
    main()
