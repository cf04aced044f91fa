"""`edgekit camera`: live classification or detection over `edgekit.runtime.camera.CameraSession`.

stdout carries only --json lines (one per processed frame); notices, progress and the summary go to
stderr, so `edgekit camera ... --json | jq` sees nothing else.
"""

import json
import time

import click

from edgekit.cli.cmd_run import findings_document
from edgekit.cli.common import (device_option, handles_errors, json_option, labels_option, threads_option,
                                threshold_option)
from edgekit.errors import EdgekitError
from edgekit.runtime.camera.capture import Backoff
from edgekit.runtime.interpreter import names_segments

# Without --json, a progress line this often (seconds): a live demo should show it is alive.
PROGRESS_EVERY_S = 2.0


def _json_line(frame, result, labels):
    """One processed frame as the JSON line `--json` prints: its findings as `edgekit run` reports them."""
    line = {"frame": frame.index, "time": round(frame.time, 3), "latency_ms": result.latency_ms,
            **findings_document(result, labels)}
    return json.dumps(line)


def _top(findings):
    found = findings.get("classes") or findings.get("objects") or []
    if not found:
        return "nothing above the threshold"
    return ", ".join(f"{item['label']} {item['score']:.2f}" for item in found[:3])


def _printer(as_json, session):
    """The per-frame callback: a JSON line on stdout, or a progress line on stderr now and then. Classes are
    named by the session's Runner of the moment (a model taught with --teach gains classes as it runs)."""
    last = [0.0]

    def on_frame(frame, result, fps):
        labels = session.runner.labels
        if as_json:
            click.echo(_json_line(frame, result, labels))
            return
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            top = _top(findings_document(result, labels))
            click.echo(f"frame {frame.index}: {top} | {fps:.1f} FPS, invoke {result.latency_ms:.1f} ms", err=True)

    return on_frame


def format_summary(s):
    """The line a run ends with, from its `runtime.camera.CameraSummary` `s`."""
    line = (f"edgekit camera: {s.frames} frames from {s.source} in {s.elapsed_s:.1f} s ({s.fps or 0:.1f} FPS) on "
            f"{s.model.device}; captured {s.captured}, dropped {s.dropped} stale, reconnects {s.reconnects}, "
            f"size changes {s.size_changes}; ended: {s.ended}")
    if s.invoke:
        line += f"; invoke p50 {s.invoke.p50_ms:.1f} ms"
    if s.recording:
        line += f"; recorded {s.recorded_frames} frames to {s.recording}"
    return line


def _teacher(model, teach, serve, keep_classes, save_path):
    """The `learn.teach.Teacher` for --teach (None without it), after checking the options that go with it."""
    if not teach:
        if keep_classes or save_path:
            raise EdgekitError(f"{'--keep-classes' if keep_classes else '--save'} goes with --teach: add --teach "
                               "--serve HOST:PORT to teach the model from a browser page")
        return None
    if not serve:
        raise EdgekitError("--teach needs --serve HOST:PORT: the classes are taught from that browser page "
                           "(e.g. --serve 127.0.0.1:8080)")
    # Imported only here: the camera without --teach never loads edgekit.learn.
    from edgekit.learn.teach import Teacher

    return Teacher(model, keep_classes=keep_classes, save_path=save_path)


def _attach(teacher, session, device, threads):
    """teacher.attach(session), letting go of the session's camera and port if that fails (it never ran)."""
    try:
        teacher.attach(session, device=device, threads=threads)
    except BaseException:
        session.server.close()
        session.grabber.reader.release()
        raise


@click.command("camera")
@click.argument("model", nargs=-1, required=True, type=click.Path())
@click.option("--source", default="0", show_default=True,
              help="Camera index, /dev/videoN, video file, image folder, rtsp:// or http:// URL, or a "
                   "GStreamer pipeline ending in appsink.")
@device_option()
@labels_option()
@threshold_option()
@click.option("--top-k", default=3, show_default=True, help="Classes to report per frame.")
@click.option("--display/--headless", default=False, show_default=True,
              help="Show the annotated frames in a window (needs a screen and OpenCV with a GUI).")
@click.option("--record", type=click.Path(dir_okay=False), help="Write the annotated frames to this .mp4.")
@click.option("--record-fps", type=float, default=None, help="Frame rate of the recording [the source's, else 15].")
@click.option("--serve", metavar="HOST:PORT",
              help="Stream the annotated frames to a browser page at HOST:PORT (host 127.0.0.1 by default; "
                   "0.0.0.0 lets other machines watch).")
@click.option("--max-frames", type=int, default=None, help="Stop after this many processed frames.")
@click.option("--loop", is_flag=True, help="Play a file or folder again from the start when it ends.")
@click.option("--reconnect-delay", type=float, default=Backoff.FIRST_S, show_default=True,
              help="Seconds before the first reconnect of a live source that dropped; doubles each try.")
@click.option("--reconnect-max", type=float, default=Backoff.MOST_S, show_default=True,
              help="Longest wait between reconnects (seconds).")
@click.option("--reconnect-attempts", type=int, default=Backoff.ATTEMPTS, show_default=True,
              help="Reconnect tries before giving up (0: keep trying).")
@click.option("--teach", is_flag=True,
              help="Teach an imprinting model new classes from the --serve page: a button per class adds the "
                   "current frame to it, 'new class' starts one, 'save model' writes it (see --save); "
                   "these need the token printed with the page's URL.")
@click.option("--keep-classes", is_flag=True, help="With --teach: keep the model's own classes, new ones after them.")
@click.option("--save", "save_path", type=click.Path(dir_okay=False),
              help="With --teach: where 'save model' writes [MODEL's name + _taught.tflite, beside it].")
@threads_option("CPU threads for inference [all cores].")
@json_option("Print one JSON line per processed frame.")
@handles_errors
def camera_command(model, source, device, labels_path, threshold, top_k, display, record, record_fps, serve,
                   max_frames, loop, reconnect_delay, reconnect_max, reconnect_attempts, teach, keep_classes, save_path,
                   threads, as_json):
    """Classify or detect live, from a camera, a video file, a stream or an image folder.

    The newest frame always goes to inference (stale ones are dropped and counted), live sources
    reconnect when they drop, and Ctrl-C or SIGTERM ends cleanly with the recording finalised.
    MODEL may be a model cut into segments: their folder, or the segment files in order, run one per
    device (--device usb:0,usb:1 or pci:0,pci:1, else as many Edge TPUs as are found, else the CPU).

    \b
    Example:
      edgekit camera mobilenet_v2_1.0_224_quant_edgetpu.tflite --labels imagenet_labels.txt
      edgekit camera ssd_mobilenet_v2_coco_quant_postprocess_edgetpu.tflite --labels coco_labels.txt \\
          --source rtsp://camera.local/stream --serve 0.0.0.0:8080 --record out.mp4
      edgekit camera efficientnet-lite0_imprinting.tflite --teach --serve 127.0.0.1:8080
      edgekit camera det_segment_0_of_2_edgetpu.tflite det_segment_1_of_2_edgetpu.tflite --device usb:0,usb:1
    """
    segmented = names_segments(list(model))
    if segmented and teach:
        raise EdgekitError(f"{', '.join(model)}: --teach rewrites one model file's imprinting head; give that "
                           "model, not segments")
    model = list(model) if segmented else model[0]
    teacher = _teacher(model, teach, serve, keep_classes, save_path)
    try:
        from edgekit.runtime.camera.session import CameraSession
    except ImportError as e:
        if (e.name or "").split(".")[0] != "cv2":
            raise
        raise EdgekitError("edgekit camera needs OpenCV: pip install 'edgekit[camera]'") from None

    session = CameraSession(model, source, device=device, labels_path=labels_path, threshold=threshold,
                            top_k=top_k, display=display, record=record, record_fps=record_fps, serve=serve,
                            max_frames=max_frames, loop=loop, threads=threads,
                            backoff=Backoff(reconnect_delay, reconnect_max, reconnect_attempts))
    session.on_frame = _printer(as_json, session)
    try:
        if teacher is not None:
            _attach(teacher, session, device, threads)
            click.echo(f"edgekit: teach at {session.server.url_with_token} ('save model' writes "
                       f"{teacher.save_path})", err=True)
        elif session.server:
            click.echo(f"edgekit: preview at {session.server.url}", err=True)
        summary = session.run()
    finally:
        if teacher is not None:
            teacher.close()
    click.echo(format_summary(summary), err=True)
    if summary.ended == "lost":
        raise EdgekitError(f"{source}: the source stopped and did not come back after {reconnect_attempts} "
                           "reconnect attempts (--reconnect-attempts 0 keeps trying)")
