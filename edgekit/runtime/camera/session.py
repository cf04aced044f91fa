"""The camera loop: capture thread -> inference (this thread) -> output thread, and a summary at the end.

Three stages, so that the interpreter is never idle waiting for a frame to be read or drawn:
- capture (capture.py): read, convert, and for classifiers resize to the input size;
- inference: `Runner.run_loaded` on the newest prepared frame (for a model in segments, `Runner.run_pipelined`,
  each segment on its own device working on its own frame);
- output (`Outputs`): overlay, recording, browser preview, window, and the per-frame callback.
Ctrl-C and SIGTERM set a stop flag; the loop then ends the normal way, so the recording is finalised.
"""

import collections
import os
import queue
import signal
import threading
import time
from collections import namedtuple

import cv2

from edgekit.errors import EdgekitError
from edgekit.runtime import images, labels as labels_mod
from edgekit.runtime.camera import overlay
from edgekit.runtime.camera.capture import Backoff, FrameGrabber, yield_to_inference
from edgekit.runtime.camera.recorder import Recorder
from edgekit.runtime.camera.server import MjpegServer, parse_address
from edgekit.runtime.camera.frame_sources import parse_source
from edgekit.runtime.benchmark import latency_stats
from edgekit.runtime.interpreter import open_model
from edgekit.runtime.pipeline import Runner, pipelined_runner, pipelines
from edgekit.runtime.tasks import CLASSIFICATION, DEFAULT_THRESHOLD

# Percentiles in the summary cover the most recent frames only, so a run of days keeps a fixed size.
LATENCY_WINDOW = 10_000
WINDOW_NAME = "edgekit camera"

CameraSummary = namedtuple("CameraSummary", "model source source_kind frames captured dropped reconnects "
                                            "size_changes elapsed_s fps invoke ended recording recorded_frames "
                                            "served")
"""How a camera run went. model: a pipeline.ModelInfo; source: as given, and source_kind; frames:
processed; captured, dropped (stale frames nobody took), reconnects, size_changes: the capture thread's
counts; elapsed_s (to the millisecond) and fps (to two places, None for no time); invoke: the
benchmark.LatencyStats of the last LATENCY_WINDOW frames (None for no frame); ended: why the loop ended;
recording: the MP4 written (None without one or when it held no frame); recorded_frames: frames in it
(None without --record); served: the preview's URL (None without --serve)."""


def make_prepare(runner):
    """The capture thread's share of preprocessing, so that it overlaps with the previous invoke.

    BGR -> PIL in the model's mode, and for a classifier the resize to its input size; given an image
    of that size, the Runner only copies it. TFLite's half-pixel bilinear (the classifiers' default) is
    done by cv2.resize(INTER_LINEAR): the same sample points (pixel centres, as TFLite's half_pixel_centers)
    and weights in fixed-point arithmetic, so within 1 of `images.tflite_bilinear` per value, and
    vectorised C++ rather than numpy, which is what lets the loop keep up with invoke when the
    interpreter's threads fill the cores (benchmarks/bench_camera.py measures it).
    Other methods go through `images.resize`. Detection letterboxes from the frame's own size, so
    its resize stays with the Runner.
    """
    size = tuple(int(v) for v in runner.interpreter.get_input_details()[0]["shape"][1:3][::-1])
    fast = runner.task == CLASSIFICATION and runner.resize == "tflite-bilinear"

    def prepare(bgr):
        if fast:
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
        picture = images.convert(overlay.bgr_to_pil(bgr), runner.mode)
        if runner.task == CLASSIFICATION and picture.size != size:
            picture = images.resize(picture, size, runner.resize)
        return picture

    return prepare


class FpsMeter:
    """Frames per second over the last `window` frames: follows changes within a second or two."""

    def __init__(self, window=30):
        self.times = collections.deque(maxlen=window)

    def tick(self, now=None):
        self.times.append(time.perf_counter() if now is None else now)

    @property
    def fps(self):
        if len(self.times) < 2 or self.times[-1] <= self.times[0]:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


class Outputs:
    """The output thread: everything done with a result after inference, in order, off the hot path.

    Its queue is short and `put` blocks when it is full: a slow disk slows the loop rather than
    filling memory. An error here stops the loop (re-raised by `put` and `close`).
    """

    def __init__(self, labels=None, recorder=None, server=None, display=False, on_frame=None, stop=None,
                 live=False):
        self.labels, self.recorder, self.server, self.live = labels, recorder, server, live
        self.display, self.on_frame, self.stop = display, on_frame, stop
        self.error = None
        self._queue = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="edgekit-output", daemon=True)
        self._thread.start()

    def put(self, frame, result, fps, dropped):
        if self.error is not None:
            raise self.error
        self._queue.put((frame, result, fps, dropped))

    def close(self):
        self._queue.put(None)
        self._thread.join()
        if self.display:
            import cv2

            cv2.destroyAllWindows()
        if self.error is not None:
            raise self.error

    def _run(self):
        yield_to_inference()
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # keep draining, so the inference thread never blocks on a dead consumer
            try:
                self._handle(*item)
            except Exception as e:  # handed to the inference thread, which owns error reporting
                self.error = e
                if self.stop is not None:
                    self.stop()

    def _handle(self, frame, result, fps, dropped):
        if self.on_frame is not None:
            self.on_frame(frame, result, fps)
        stats = {"fps": round(fps, 2), "latency_ms": result.latency_ms, "frame": frame.index, "dropped": dropped}
        # The preview draws only while someone watches it: an unwatched board saves the overlay's CPU.
        serve = self.server is not None and self.server.wanted()
        if self.server is not None and not serve:
            self.server.update_stats(**stats)
        if not (self.recorder or self.display or serve):
            return
        image = overlay.annotate_frame(frame.image, result, self.labels, fps, dropped)
        if self.recorder is not None:
            # Live frames are recorded on their capture clock (drops would otherwise speed the video up).
            self.recorder.write(image, frame.time if self.live else None)
        if serve:
            self.server.publish(image, **stats)
        if self.display:
            self._show(image)

    def _show(self, image):
        import cv2

        cv2.imshow(WINDOW_NAME, image)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27) and self.stop is not None:  # q or Esc
            self.stop()


def check_display():
    """--display needs OpenCV's GUI and a screen; say which is missing, and what to use instead."""
    import cv2

    if "GUI:                           NONE" in cv2.getBuildInformation():
        raise EdgekitError("--display needs OpenCV with a GUI (pip's opencv-python-headless has none): "
                           "pip install opencv-python, or use --serve HOST:PORT to watch in a browser")
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise EdgekitError("--display needs a screen (DISPLAY is not set): use --serve HOST:PORT to watch "
                           "in a browser instead")


class _Signals:
    """Ctrl-C and SIGTERM -> `stop()`, while the loop runs (main thread only: Python's rule)."""

    def __init__(self, stop):
        self.stop, self.saved, self.received = stop, {}, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame):
        if self.received:
            raise KeyboardInterrupt  # a second Ctrl-C: the user does not want to wait for a clean end
        self.received = signal.Signals(signum).name
        self.stop()

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


class CameraSession:
    """One run of a model over a source. `run()` returns the `CameraSummary`; `stop()` ends it from anywhere.

    `on_frame(frame, result, fps)`, when given, is called on the output thread for every processed frame
    with the capture.Frame and its pipeline.ImageResult (name class ids with `runner.labels`).
    `newest` is the (Frame, ImageResult) of the newest processed frame (None before the first), for other
    threads to look at; `replace_model` changes the model between two frames (a model being taught).
    """

    def __init__(self, model, source="0", device="auto", labels_path=None, threshold=None, top_k=3,
                 display=False, record=None, record_fps=None, serve=None, max_frames=None, loop=False,
                 backoff=None, threads=None, on_frame=None, notice=None):
        if max_frames is not None and max_frames < 1:
            raise EdgekitError("--max-frames must be 1 or more")
        if display:
            check_display()
        self.source = parse_source(source)
        kwargs = {"notice": notice} if notice else {}
        self.opened = open_model(model, device=device, num_threads=threads, **kwargs)
        self.runner = Runner(self.opened, top_k=top_k)
        self.runner.threshold = DEFAULT_THRESHOLD[self.runner.task] if threshold is None else threshold
        if labels_path:
            self.runner.labels = labels_mod.read_label_file(labels_path)
        self.max_frames, self.on_frame, self.display = max_frames, on_frame, display
        self.stop_event = threading.Event()
        self.newest = None
        self._replacement = None  # (opened, labels, threshold) waiting for the next frame
        self._replacement_lock = threading.Lock()
        self.server = None
        if serve:
            host, port = parse_address(serve)
            title = os.path.basename(str(self.opened.requested_path).rstrip(os.sep))
            self.server = MjpegServer(host, port, title=f"{title} on {self.source.text}")
        try:
            # Opens the source: "no camera" is reported here, before anything runs.
            self.grabber = FrameGrabber(self.source, make_prepare(self.runner), loop=loop,
                                        backoff=backoff or Backoff())
            self.recorder = Recorder(record, record_fps or self.grabber.fps) if record else None
        except BaseException:
            if self.server:
                self.server.close()
            if hasattr(self, "grabber"):
                self.grabber.reader.release()
            raise

    def stop(self):
        self.stop_event.set()
        self.grabber.stop()

    def replace_model(self, opened, labels=None, threshold=None):
        """Run `opened` (an interpreter.OpenedModel taking the same input) from the next frame on, with the
        task, top-k, resize and normalisation of the model it replaces. labels: {id: name} naming its
        classes (None: keep the current ones); threshold: None keeps the current one. Any thread may call
        it; a later call before the next frame wins. A model in segments, which runs pipelined, is not
        replaced."""
        if pipelines(self.opened):
            raise EdgekitError(f"{self.opened.requested_path}: a model in segments runs pipelined and cannot be "
                               "replaced mid-run; run one model file to replace it")
        now = self.runner.interpreter.get_input_details()[0]
        new = opened.interpreter.get_input_details()[0]
        if (now["shape"].tolist() != new["shape"].tolist() or now["dtype"] != new["dtype"]
                or tuple(now["quantization"]) != tuple(new["quantization"])):
            raise EdgekitError(f"{opened.path}: its input ({new['shape'].tolist()} {new['dtype'].__name__}) "
                               f"differs from the running model's ({now['shape'].tolist()} "
                               f"{now['dtype'].__name__}), so it cannot replace it mid-run")
        with self._replacement_lock:
            self._replacement = (opened, labels, threshold)

    def _replaced_runner(self):
        """The Runner for a model given to `replace_model` since the last frame, else None."""
        with self._replacement_lock:
            replacement, self._replacement = self._replacement, None
        if replacement is None:
            return None
        opened, labels, threshold = replacement
        old = self.runner
        return Runner(opened, task=old.task, labels=labels or old.labels, top_k=old.top_k,
                      threshold=old.threshold if threshold is None else threshold, resize=old.resize,
                      mean=old.mean, std=old.std)

    def run(self):
        """Process frames until the source ends, --max-frames, stop(), Ctrl-C or SIGTERM."""
        if self.server:
            self.server.start()
        outputs = Outputs(self.runner.labels, self.recorder, self.server, self.display, self.on_frame, self.stop,
                          live=self.source.live)
        meter, latencies, frames = FpsMeter(), collections.deque(maxlen=LATENCY_WINDOW), 0
        start = time.perf_counter()
        ended, recording, results = None, None, None
        try:
            with _Signals(self.stop) as signals:
                self.grabber.start()
                results = self._results()
                for frame, result in results:
                    outputs.labels = self.runner.labels
                    self.newest = (frame, result)
                    meter.tick()
                    latencies.append(result.latency_ms)
                    frames += 1
                    outputs.put(frame, result, meter.fps, self.grabber.dropped)
                    if self.max_frames and frames >= self.max_frames:
                        ended = "max frames"
                        break
                if signals.received:
                    ended = f"signal {signals.received}"
        finally:
            self.grabber.stop()
            if results is not None:
                results.close()     # after stop(): a pipeline's feeder waiting for a frame sees the end
            try:
                outputs.close()
            finally:
                recording = self.recorder.close() if self.recorder else None
                if self.server:
                    self.server.close()
            self.grabber.close()
        elapsed = time.perf_counter() - start
        return self._summary(frames, elapsed, latencies, ended or self.grabber.ended, recording)

    def _results(self):
        """(frame, pipeline.ImageResult) for each frame the grabber hands over. A model in segments is pipelined:
        while its last segment works on one frame, the first already works on a newer one (one device each)."""
        pipe = pipelined_runner(self.opened) if pipelines(self.opened) else None
        if pipe is not None:
            yield from self.runner.run_pipelined(pipe, self.grabber.frames(),
                                                 lambda frame: self.runner.load_decoded(frame.prepared),
                                                 name=lambda frame: "")
            return
        for frame in self.grabber.frames():
            if self._replacement is not None:
                self.runner = self._replaced_runner() or self.runner
            yield frame, self.runner.run_loaded(frame.prepared)

    def _summary(self, frames, elapsed, latencies, ended, recording):
        g = self.grabber
        return CameraSummary(
            self.runner.info, self.source.text, self.source.kind, frames, g.captured, g.dropped, g.reconnects,
            g.size_changes, round(elapsed, 3), round(frames / elapsed, 2) if elapsed > 0 else None,
            latency_stats(latencies) if latencies else None, ended, recording,
            self.recorder.frames if self.recorder is not None else None,
            self.server.url if self.server is not None else None)


def run_camera(model, source="0", **options):
    """Run `model` over `source` (see `CameraSession` for the options); returns the `CameraSummary`."""
    return CameraSession(model, source, **options).run()
