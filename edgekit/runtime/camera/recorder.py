"""Record annotated frames to an MP4 that is either complete or absent.

An MP4 is playable only once its index (the moov box) is written, which happens when the writer is
released. So frames go to a hidden temporary file beside the target, and `close()` releases the writer
and renames the file into place: a run stopped by Ctrl-C or SIGTERM (which end in close()) leaves a
playable recording, and a crash leaves no half-written file under the user's name.
"""

import os

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.files import remove_quietly, temporary_beside

# MPEG-4 Part 2: every OpenCV FFmpeg build has its encoder (pip wheels lack H.264's).
FOURCC = "mp4v"
DEFAULT_FPS = 15.0


class Recorder:
    """`write(bgr)` frames to `path`; the writer opens at the first frame, when the size is known.

    A frame of another size (a camera that changed resolution) is scaled to the first frame's size:
    an MP4 track has one size. Odd sizes lose their last row or column (the encoder needs even ones).
    """

    def __init__(self, path, fps=None):
        import cv2

        self._cv2 = cv2
        self.path = os.path.abspath(os.fspath(path))
        self.fps = float(fps) if fps and fps > 0 else DEFAULT_FPS
        folder, ext = os.path.dirname(self.path), os.path.splitext(self.path)[1]
        if ext.lower() not in (".mp4", ".m4v", ".mov"):
            raise EdgekitError(f"{path}: record to an .mp4 file")
        if not os.path.isdir(folder):
            raise EdgekitError(f"{path}: the folder {folder} does not exist")
        self.temp_path = None  # made with the writer, at the first frame
        self.size = None
        self.frames = 0
        self.resized = 0
        self._writer = None
        self._start = None
        self._last = None

    def write(self, image, at=None):
        """Append `image`. With `at` (its capture time in seconds, for live sources) the video follows
        that clock: a frame is repeated to fill the time since the last one and skipped when it comes
        early, so a recording plays at real speed however many frames inference dropped."""
        if self._writer is None:
            self._open((image.shape[1], image.shape[0]))
            self._start = at
        image = self._fit(image)
        copies = self._copies(at)
        # The time before this frame belongs to the previous one: hold it, then show the new frame.
        for _ in range(copies - 1):
            self._writer.write(self._last)
            self.frames += 1
        if copies:
            self._writer.write(image)
            self.frames += 1
            self._last = image

    def _copies(self, at):
        if at is None or self._start is None:
            return 1
        due = int((at - self._start) * self.fps) + 1  # frames the clock says exist once this one does
        if due - self.frames > self.fps:
            # A gap of over a second (a reconnect): one frame, and the clock restarts from it, rather
            # than a long frozen picture.
            self._start = at - self.frames / self.fps
            return 1
        return max(0, due - self.frames)

    def _fit(self, image):
        width, height = image.shape[1], image.shape[0]
        if (width, height) == self.size:
            return image
        if (width - width % 2, height - height % 2) == self.size:
            # An odd size: the encoder's 4:2:0 colour needs even ones, so drop the last row or column
            # here rather than let FFmpeg do it behind the size we asked for.
            return np.ascontiguousarray(image[:height - height % 2, :width - width % 2])
        self.resized += 1
        return self._cv2.resize(image, self.size, interpolation=self._cv2.INTER_AREA)

    def _open(self, size):
        cv2 = self._cv2
        size = (max(2, size[0] - size[0] % 2), max(2, size[1] - size[1] % 2))
        # Beside the target (so the rename is atomic), with its extension (FFmpeg picks the container by it).
        try:
            self.temp_path = temporary_beside(self.path)
            writer = cv2.VideoWriter(self.temp_path, cv2.VideoWriter_fourcc(*FOURCC), self.fps, size)
        except OSError:
            writer = None
        if writer is None or not writer.isOpened():
            self._discard()
            raise EdgekitError(f"{self.path}: OpenCV cannot write an MP4 ({FOURCC}) here: check the folder is "
                               "writable and OpenCV was built with FFmpeg")
        self._writer, self.size = writer, size

    def close(self):
        """Finish the file and move it into place; returns the path, or None when no frame was written."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        if not self.frames:
            self._discard()
            return None
        os.replace(self.temp_path, self.path)
        return self.path

    def _discard(self):
        if self.temp_path:
            remove_quietly(self.temp_path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
