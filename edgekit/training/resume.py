"""Checkpoints that survive Ctrl-C and SIGTERM, and `--resume`.

After every finished epoch the trainer saves what the next epoch needs: the model's weights, the optimizer's
variables (momentum included, so a resumed run takes the same steps), the best epoch's weights for early
stopping, and a `state.json` naming them. Each save goes to a hidden temporary folder that is renamed into
place, and `state.json` is replaced last, atomically: a run killed at any instant leaves the previous
epoch's checkpoint whole. A fingerprint of the data and the options is kept, so `--resume` refuses a
different dataset instead of silently mixing two runs.
"""

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.files import atomic_path, write_atomic

STATE_FILE = "state.json"
FORMAT = "edgekit-train-checkpoint/1"


class ResumeError(EdgekitError):
    exit_code = 2


class TrainingInterrupted(EdgekitError):
    """Ctrl-C or SIGTERM: the last finished epoch's checkpoint is on disk."""

    exit_code = 130


def fingerprint(splits, settings):
    """A digest of the pictures, their labels (or boxes) and splits, and the settings that shape the run."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"classes": list(splits.class_names), "settings": settings}, sort_keys=True).encode())
    for name in ("train", "val", "test"):
        subset = getattr(splits, name)
        digest.update(name.encode())
        if subset is None:
            continue
        if hasattr(subset, "paths"):  # a classifier's Subset
            for path, label in zip(subset.paths, subset.labels):
                digest.update(f"{os.path.abspath(path)}\0{int(label)}\n".encode())
        else:  # a detector's list of labelled_boxes.BoxPicture
            for picture in subset:
                digest.update(f"{os.path.abspath(picture.path)}\0".encode())
                for values in (picture.boxes, picture.labels, picture.crowd):
                    digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()[:24]


def run_state(splits, settings, checkpoints, resume_run):
    """(fingerprint, saved state or None) at the start of a run: with `resume_run`, the checkpoint's state (checked
    against the fingerprint of `splits` and `settings`, a dict); otherwise any old checkpoint is removed."""
    digest = fingerprint(splits, settings)
    state = checkpoints.load(digest) if resume_run else None
    if checkpoints is not None and not resume_run:
        checkpoints.remove()
    return digest, state


class CheckpointFolder:
    """The checkpoints of one training run, in `folder`."""

    def __init__(self, folder):
        self.folder = os.fspath(folder)

    @property
    def state_path(self):
        return os.path.join(self.folder, STATE_FILE)

    def exists(self):
        return os.path.isfile(self.state_path)

    def load(self, expected_fingerprint):
        """The saved state (a dict, with "path": the folder of its files); ResumeError when there is none or it
        belongs to other data or settings."""
        if not self.exists():
            raise ResumeError(f"{self.folder}: nothing to resume (no {STATE_FILE}); run without --resume to start")
        try:
            with open(self.state_path, encoding="utf-8") as f:
                state = json.load(f)
        except (OSError, ValueError) as e:
            raise ResumeError(f"{self.state_path}: unreadable checkpoint state ({e}); run without --resume "
                              "and with --overwrite to start again") from None
        if state.get("format") != FORMAT:
            raise ResumeError(f"{self.state_path}: not an edgekit training checkpoint; run without --resume")
        if state.get("fingerprint") != expected_fingerprint:
            raise ResumeError(f"{self.folder}: the checkpoint was made with other pictures, labels or settings; "
                              "resume with the same --data, splits and options, or start again with --overwrite")
        state["path"] = os.path.join(self.folder, state["files"])
        return state

    def save(self, state, weights, arrays):
        """Save a checkpoint: `weights` {file stem: keras.Model} saved as `<stem>.weights.h5`, `arrays`
        {file stem: [numpy arrays]} as `<stem>.npz`, then `state` (a JSON-able dict) pointing at them."""
        os.makedirs(self.folder, exist_ok=True)
        step = f"epoch-{state['epochs_done']:04d}"
        temporary = os.path.join(self.folder, f".{step}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        os.makedirs(temporary)
        try:
            for stem, model in weights.items():
                model.save_weights(os.path.join(temporary, f"{stem}.weights.h5"))
            for stem, values in arrays.items():
                save_arrays(os.path.join(temporary, f"{stem}.npz"), values)
            final = os.path.join(self.folder, step)
            if os.path.isdir(final):
                shutil.rmtree(final)
            os.replace(temporary, final)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        write_atomic(self.state_path, json.dumps(dict(state, format=FORMAT, files=step), indent=1))
        self._forget_all_but(step)

    def _forget_all_but(self, keep):
        for name in os.listdir(self.folder):
            path = os.path.join(self.folder, name)
            if name != keep and os.path.isdir(path) and (name.startswith("epoch-") or ".tmp-" in name):
                shutil.rmtree(path, ignore_errors=True)

    def remove(self):
        shutil.rmtree(self.folder, ignore_errors=True)


def saved_arrays(state, stem):
    """The arrays a checkpoint `state` (as `CheckpointFolder.load` returns it) saved as `stem`, or None."""
    if state is None:
        return None
    path = os.path.join(state["path"], f"{stem}.npz")
    return load_arrays(path) if os.path.isfile(path) else None


def restore_optimizer(optimizer, arrays):
    """Give a built optimizer the variables a checkpoint saved."""
    if arrays is None or len(arrays) != len(optimizer.variables):
        raise ResumeError("the checkpoint's optimizer state does not fit this model; start again with --overwrite")
    for variable, value in zip(optimizer.variables, arrays):
        variable.assign(value)


def save_arrays(path, values):
    """A list of arrays to an .npz file, atomically."""
    with atomic_path(path) as temporary, open(temporary, "wb") as f:
        np.savez(f, *[np.asarray(v) for v in values])


def load_arrays(path):
    with np.load(path) as found:
        return [found[f"arr_{i}"] for i in range(len(found.files))]


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While training, SIGTERM (a scheduler's or `kill`'s) stops it the way Ctrl-C does: at a clean point, after
    which the last checkpoint stays. Only the main thread can set handlers; elsewhere nothing changes."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:          # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
