"""The capture thread: read frames as fast as the source gives them and hand the newest to inference.

A camera produces frames at its own pace. If inference took them in order it would fall further and
further behind (the "growing lag" of naive demos), so a live source writes into a one-frame slot and
a frame nobody took before the next one arrived is dropped and counted. Files and folders have no
clock to keep up with, so they are handed over losslessly: every frame is processed, in order.

The thread also does the per-frame work that does not need the interpreter (colour conversion, the
classifier's resize) through `prepare`, so it overlaps with the previous frame's inference.
"""

import os
import threading
import time
from collections import namedtuple

from edgekit.errors import EdgekitError
from edgekit.runtime.camera.frame_sources import open_source

# index: position in the source (counting dropped frames); time: Unix time of capture; image: BGR
# uint8 [H, W, 3] as read; prepared: what `prepare` made of it (None without one).
Frame = namedtuple("Frame", "index time image prepared")


# Niceness of the capture and output threads (Linux applies it per thread).
HELPER_NICENESS = 10


def yield_to_inference():
    """Lower the calling thread's scheduling priority below the interpreter's threads.

    The interpreter's threads run an op in parallel and meet at a barrier after each, so a helper
    thread that takes a core from one of them stalls all of them until it gives the core back, so a
    little capture work costs inference many times over. At a lower priority the helpers run in
    the gaps the interpreter leaves (waits at its barriers, the Python between invokes), which is
    what overlapping them with inference means. Where the OS has no per-thread priority, a no-op.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HELPER_NICENESS)
    except (AttributeError, OSError):
        pass


class FrameSlot:
    """A one-frame handoff between the capture thread and inference.

    `put` replaces a frame nobody took (counted in `dropped`); `put_wait` waits for the slot to be free
    instead (files). `take` returns the newest frame, or None once the slot is closed and empty.
    """

    def __init__(self):
        self._frame = None
        self._closed = False
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, frame):
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()

    def put_wait(self, frame, stop):
        """Wait until the last frame was taken (or `stop` is set), then put; False when stopped."""
        with self._cond:
            while self._frame is not None and not stop.is_set() and not self._closed:
                # A bounded wait, so that `stop` set without a notify is still seen.
                self._cond.wait(0.1)
            if stop.is_set() or self._closed:
                return False
            self._frame = frame
            self._cond.notify_all()
            return True

    def take(self, timeout=None):
        """The newest frame; None when closed and empty, or when `timeout` passes first."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout):
                return None
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self):
        return self._closed


class Backoff:
    """Waits between reconnect attempts: `first` seconds, doubling up to `most`; `attempts` 0 = for ever."""

    # The defaults, which `edgekit camera`'s --reconnect-* options show too.
    FIRST_S, MOST_S, ATTEMPTS = 0.5, 10.0, 0

    def __init__(self, first=FIRST_S, most=MOST_S, attempts=ATTEMPTS):
        if first < 0 or most < first:
            raise EdgekitError("reconnect delays must be 0 or more, and the longest at least the first")
        self.first, self.most, self.attempts = float(first), float(most), int(attempts)

    def delays(self):
        delay, tried = self.first, 0
        while not self.attempts or tried < self.attempts:
            yield delay
            tried += 1
            delay = min(self.most, delay * 2 if delay else 0.1)


class FrameGrabber:
    """Reads `source` in a daemon thread into a `FrameSlot`; `frames()` yields what inference should see.

    `ended` tells why the source stopped: "end" (file or folder finished), "lost" (a live source did not
    come back within its reconnect attempts), "stopped" (stop() was called), or "error: ..." (`error`
    holds the exception, re-raised by frames()).
    """

    def __init__(self, source, prepare=None, lossless=None, backoff=None, loop=False, reader=None):
        self.source = source
        self.prepare = prepare
        self.lossless = (not source.live) if lossless is None else lossless
        self.backoff = backoff or Backoff()
        self.loop = loop
        self.slot = FrameSlot()
        self.stop_event = threading.Event()
        self.captured = 0
        self.reconnects = 0
        self.size_changes = 0
        self._read_since_open = 0
        self.size = None
        self.ended = None
        self.error = None
        # Open now, in the caller's thread, so "no camera" is an error the command reports at once.
        self.reader = reader or open_source(source)
        self.fps = self.reader.fps
        self._thread = threading.Thread(target=self._run, name="edgekit-capture", daemon=True)

    @property
    def dropped(self):
        return self.slot.dropped

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.stop_event.set()
        self.slot.close()

    def join(self, timeout=None):
        self._thread.join(timeout)

    def close(self, timeout=5.0):
        """stop() and wait for the thread: OpenCV aborts the process if it exits mid-read."""
        self.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def frames(self, timeout=0.25):
        """Yield frames until the source ends or stop() is called; re-raises a capture error."""
        while not self.stop_event.is_set():
            frame = self.slot.take(timeout)
            if frame is not None:
                yield frame
            elif self.slot.closed:
                break
        if self.error is not None:
            raise self.error

    def _run(self):
        index = 0
        yield_to_inference()
        try:
            while not self.stop_event.is_set():
                ok, image = self.reader.read()
                if ok and image is not None:
                    index = self._deliver(index, image)
                    if index is None:
                        break
                    continue
                self.reader.release()
                if not self._next_reader():
                    break
        except Exception as e:  # handed to the consumer: a thread's exception would otherwise vanish
            self.error = e
            self.ended = f"error: {e}"
        finally:
            self.reader.release()
            if self.ended is None:
                self.ended = "stopped"
            self.slot.close()

    def _deliver(self, index, image):
        size = (image.shape[1], image.shape[0])
        if self.size is not None and size != self.size:
            self.size_changes += 1
        self.size = size
        prepared = self.prepare(image) if self.prepare else None
        frame = Frame(index, time.time(), image, prepared)
        self.captured += 1
        self._read_since_open += 1
        if self.lossless:
            if not self.slot.put_wait(frame, self.stop_event):
                return None
        else:
            self.slot.put(frame)
        return index + 1

    def _next_reader(self):
        """After the source stopped giving frames: reopen it (live, or --loop), else record the end."""
        if self.stop_event.is_set():
            return False
        read, self._read_since_open = self._read_since_open, 0
        if not self.source.live:
            # A file that gave nothing since it was opened would loop without end.
            if not self.loop or not read:
                self.ended = "end"
                return False
            self.reader = open_source(self.source)
            return True
        return self._reconnect()

    def _reconnect(self):
        for delay in self.backoff.delays():
            if self.stop_event.wait(delay):
                return False
            try:
                self.reader = open_source(self.source)
            except EdgekitError:
                continue
            self.reconnects += 1
            return True
        self.ended = "lost"
        return False
