"""Writing files so that nothing is ever half-written: a temporary file in the same folder, then a rename."""

import os
import tempfile


def write_atomic(path, content):
    """Write bytes or text to `path` via a temporary file in the same folder and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(content if isinstance(content, bytes) else content.encode("utf-8"))
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path
