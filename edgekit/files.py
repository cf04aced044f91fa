"""Writing files so that nothing is ever half-written: readers see the old file or the whole new one.

A file is written under a hidden temporary name in its destination folder, so that os.replace is a rename
within one file system (atomic), and renamed into place only once it is complete. The temporary file is
made with os.open and mode 0o666 rather than tempfile.mkstemp, whose owner-only 0600 would stay on the
file after the rename: this way the umask applies, as it does to a plain open(). The name carries the
process id and a random token, so two writers of the same file never share a temporary, and it keeps the
final extension, which libraries such as Pillow, numpy and OpenCV go by.

Standard library only (and edgekit's own error type): the runtime imports this.
"""

import contextlib
import os
import secrets
import tempfile

from edgekit.errors import EdgekitError


def temporary_beside(path):
    """Create an empty, uniquely named hidden file in `path`'s folder and return its path."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    stem, ext = os.path.splitext(name)
    temporary = os.path.join(folder, f".{stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{ext}")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666))
    return temporary


def remove_quietly(path):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path for a writer to fill; it becomes `path` if the block succeeds, else goes."""
    temporary = temporary_beside(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        remove_quietly(temporary)
        raise


def write_atomic(path, content):
    """Write bytes (or text, as UTF-8) to `path` atomically; returns the path."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_path(path) as temporary, open(temporary, "wb") as f:
        f.write(data)
    return os.fspath(path)


def writable_folder(path, option, what="the output folder", error=EdgekitError):
    """Create folder `path` if needed and prove that files can be written there, before any slow work.

    Raises `error` with one line naming `path`, why, and the `option` (e.g. "--out") to change.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise error(f"{path}: exists and is not a folder; choose another {option}")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".edgekit-probe-"):
            pass
    except OSError as e:
        raise error(f"{path}: cannot write {what} ({e.strerror or e}); choose another {option}") from None
    return path
