"""An MJPEG IP camera on 127.0.0.1 for tests: edgekit's own MjpegServer fed with a still picture that the test
can switch. OpenCV's FFmpeg reads it like any MJPEG network camera."""

import threading
import time

import cv2

from edgekit.runtime.camera import MjpegServer


class FakeCamera:
    """Shows the picture at `path`, resized to `size`, about `fps` frames a second for at most `patience_s`
    seconds (bounded even if nobody closes it); `show` switches the picture."""

    def __init__(self, path, port=0, size=(320, 240), fps=50, quality=80, patience_s=60):
        self.size, self.fps, self.patience_s = size, fps, patience_s
        self.server = MjpegServer("127.0.0.1", port, quality=quality).start()
        self.port = self.server.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self.show(path)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._feed, daemon=True)
        self.thread.start()

    def show(self, path, settle_s=1.0):
        """Switch to the picture at `path`; returns the time from which frames surely show it."""
        self.image = cv2.resize(cv2.imread(str(path)), self.size, interpolation=cv2.INTER_AREA)
        return time.time() + settle_s

    def _feed(self):
        for i in range(int(self.patience_s * self.fps)):
            self.server.publish(self.image, frame=i)
            if self.done.wait(1 / self.fps):
                break

    def close(self):
        self.done.set()
        self.thread.join(self.patience_s)
        self.server.close()
