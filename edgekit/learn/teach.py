"""A camera that learns: `edgekit camera MODEL --teach --serve HOST:PORT` on an imprinting model.

The browser page shows the live classification, a button per class ("add this frame to <class>"), a field
and button for a new class, and "save model". A click takes the picture of the newest processed frame,
runs it through the model's embedding extractor, imprints it (`ImprintingEngine.train`), serializes the
model and hands it to the camera loop, which runs it from its next frame on (`CameraSession.replace_model`).
"save model" writes the taught model atomically, with its class names in edgekit's metadata, to --save
(never the model the camera was started with).

Every action is a POST that needs the token printed with the page's URL (`MjpegServer.route`); the page
reads the token from its own address and sends it in a header. GET routes (the page, the state) change
nothing. The camera side (`edgekit.runtime.camera`) knows nothing of learning: this module plugs into it.
"""

import json
import os
import shutil
import tempfile
import threading
from collections import Counter, namedtuple

from edgekit.errors import EdgekitError
from edgekit.files import write_atomic, writable_folder
from edgekit.learn.imprinting.engine import ImprintingEngine
from edgekit.runtime.adapters import common
from edgekit.runtime.camera.server import Reply, json_reply
from edgekit.runtime.interpreter import invoke, open_model
from edgekit.runtime.tasks import CLASSIFICATION
from edgekit.tflite.metadata import embed_metadata, read_edgekit_metadata
from edgekit.tflite.model import read_model

SAVE_SUFFIX = "_taught"
# A class name is shown on buttons and drawn on frames: a word or a few, not a paragraph.
LONGEST_NAME = 60
# How many classes the page lists in its live classification.
SHOWN_TOP = 3

TaughtClass = namedtuple("TaughtClass", "id label shots trainable")
"""One class of the model being taught: id, label, shots (frames added on this page), trainable (False for
the base model's own classes kept with --keep-classes, which imprinting cannot change)."""

TeachState = namedtuple("TeachState", "classes top frame frame_time version updated saved hint")
"""What the page shows: classes (TaughtClass list, in id order); top: the newest frame's best classes as
(id, label, score) tuples (empty before the model has a class); frame: that frame's index (-1 before the
first) and frame_time its capture time (Unix seconds); version: how many models were taught on this page;
updated: whether the camera already runs the newest of them; saved: the file name of the last save (None
before: the folder is not shown to whoever can reach the page); hint: what to do next, in words."""


def default_save_path(model_path):
    """Where "save model" writes without --save: `<stem>_taught.tflite` beside the model."""
    stem, _ = os.path.splitext(os.fspath(model_path))
    return f"{stem}{SAVE_SUFFIX}.tflite"


def checked_save_path(model_path, save_path):
    """The absolute path "save model" writes to, after checking it is not the model itself and its folder
    takes files; one-line EdgekitError otherwise."""
    path = os.path.abspath(os.fspath(save_path or default_save_path(model_path)))
    if path == os.path.abspath(os.fspath(model_path)) or (
            os.path.exists(path) and os.path.samefile(path, model_path)):
        raise EdgekitError(f"--save {save_path}: that is the model being taught, which edgekit never overwrites; "
                           "give another file name")
    if os.path.isdir(path):
        raise EdgekitError(f"--save {save_path}: a folder; give a .tflite file name")
    writable_folder(os.path.dirname(path), "--save", "the taught model")
    return path


def new_class_name(text, existing):
    """The name typed for a new class, trimmed; EdgekitError when empty, too long or already taken."""
    name = " ".join(str(text or "").split())
    if not name:
        raise EdgekitError("type a name for the new class first")
    if len(name) > LONGEST_NAME:
        raise EdgekitError(f"the class name is {len(name)} characters long; keep it to {LONGEST_NAME}")
    if name.casefold() in {label.casefold() for label in existing}:
        raise EdgekitError(f"there is a class named '{name}' already: use its 'add this frame' button")
    return name


def _action(body):
    """A POST body: a JSON object (an empty body is {})."""
    try:
        document = json.loads(body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError):
        document = None
    if not isinstance(document, dict):
        raise EdgekitError("the request body must be a JSON object")
    return document


def _quiet(_message):
    """open_model's notices are about files this module writes for itself, not the user's."""


class Teacher:
    """Teaches an imprinting model new classes from a `CameraSession`'s frames, through its preview page.

    Construct it before the session (a model that is not an imprinting model fails at once), then `attach`
    the session (it needs `serve`); `close` removes the temporary files once the session ended.
    """

    def __init__(self, model_path, keep_classes=False, save_path=None):
        self.model_path, self.keep_classes, self._asked_save = os.fspath(model_path), keep_classes, save_path
        self.engine, self._fixed = self._engine(self.model_path)
        self.save_path = checked_save_path(self.model_path, save_path)
        self.session = self.extractor = None
        self.shots = Counter()
        self.version, self.saved = 0, None
        self._labels = {}  # the base classes' names, as the camera shows them
        self._served = None  # the OpenedModel of the newest taught model
        self._threshold = None
        self._lock = threading.Lock()  # one action at a time: the engine and the extractor are not shared
        self._folder = None  # made by attach, for the models handed to the interpreter

    def _engine(self, path):
        """The ImprintingEngine of `path`, and the ids of the kept classes it cannot train (the base model's
        own; classes imprinted before can take more shots)."""
        engine = ImprintingEngine(path, keep_classes=self.keep_classes)
        return engine, frozenset(i for i, trainable in enumerate(engine.trainable) if not trainable)

    def attach(self, session, device="auto", threads=None):
        """Plug into `session` (a CameraSession with a preview server): the page, its state and its actions."""
        if session.server is None:
            raise EdgekitError("--teach needs --serve HOST:PORT: classes are taught from the browser page")
        if session.runner.task != CLASSIFICATION:
            raise EdgekitError(f"{self.model_path}: --teach teaches a classifier, but this model runs as "
                               f"{session.runner.task}")
        ran = os.fspath(session.opened.path)
        if os.path.abspath(ran) != os.path.abspath(self.model_path):
            # A compiled model off the Edge TPU runs its CPU twin: teach the file that actually runs.
            self.engine, self._fixed = self._engine(ran)
            if self._asked_save is None:
                self.save_path = checked_save_path(ran, None)
        self.session = session
        self._folder = tempfile.mkdtemp(prefix="edgekit-teach-")
        self._labels = {i: session.runner.labels.get(i) or label for i, label in enumerate(self.engine.labels)}
        self.extractor = self._open(self.engine.serialize_extractor_model(), "extractor", device, threads)
        self._device, self._threads = device, threads
        self._threshold = session.runner.threshold
        if not self.engine.num_classes:
            # The model's own classes are not the ones being taught: show none until the first is added.
            session.runner.threshold = float("inf")
        server = session.server
        server.route("GET", "/", self._page)
        server.route("GET", "/index.html", self._page)
        server.route("GET", "/teach/state", lambda request: json_reply(self._state_document()))
        server.route("POST", "/teach/add", self._add)
        server.route("POST", "/teach/new", self._new)
        server.route("POST", "/teach/save", self._save)
        return self

    def _open(self, model_bytes, name, device, threads):
        """An OpenedModel of `model_bytes`, opened from a temporary file that is removed again at once: the
        interpreter has read it. Where a system refuses to remove a file in use (Windows), `close` does."""
        path = os.path.join(self._folder, f"{name}.tflite")
        write_atomic(path, model_bytes)
        opened = open_model(path, device=device, num_threads=threads, notice=_quiet)
        try:
            os.remove(path)
        except OSError:
            pass
        return opened._replace(requested_path=self.model_path)

    def labels(self):
        """{class id: name} of every class the model holds now."""
        names = self.engine.labels
        return {i: self._labels.get(i) or names[i] for i in range(len(names))}

    def classes(self):
        """The TaughtClass of every class the model holds now, in id order."""
        return [TaughtClass(i, label, self.shots[i], i not in self._fixed) for i, label in self.labels().items()]

    def embedding(self):
        """The embedding of the newest processed frame's picture, dequantized; EdgekitError before a frame."""
        newest = self.session.newest
        if newest is None:
            raise EdgekitError("no camera frame yet: wait for the picture to appear, then try again")
        data, _ = self.session.runner.prepare(newest[0].prepared)
        common.set_input(self.extractor.interpreter, data)
        invoke(self.extractor)
        return common.output_tensor(self.extractor.interpreter, 0).ravel()

    def add_frame(self, class_id):
        """Imprint the newest frame into class `class_id` and have the camera run the result from its next
        frame on. Returns the TeachState."""
        with self._lock:
            self._imprint(class_id)
        return self.state()

    def new_class(self, name):
        """A new class named `name`, its first shot the newest frame. Returns the TeachState."""
        with self._lock:  # the name's check and the new id hold until the class exists: two clicks make two
            name = new_class_name(name, self.labels().values())
            self._imprint(self.engine.num_classes, label=name)
        return self.state()

    def _imprint(self, class_id, label=None):
        self.engine.train(self.embedding(), class_id, label=label)
        self.shots[class_id] += 1
        self._serve()

    def _serve(self):
        opened = self._open(self.engine.serialize_model(), f"taught-{self.version + 1}", self._device,
                            self._threads)
        self.session.replace_model(opened, labels=self.labels(), threshold=self._threshold)
        self.version += 1
        self._served = opened

    def save(self):
        """Write the taught model to `save_path` atomically, its class names in its metadata; the path."""
        with self._lock:
            if not any(c.trainable for c in self.classes()):
                raise EdgekitError("nothing taught yet: add a frame to a class before saving")
            model = self.engine.serialize_model()
            metadata = read_edgekit_metadata(read_model(model))
            metadata.update(task=CLASSIFICATION, labels=[self.labels()[i] for i in range(self.engine.num_classes)])
            try:
                write_atomic(self.save_path, embed_metadata(model, metadata))
            except OSError as e:
                raise EdgekitError(f"{self.save_path}: cannot write the taught model ({e.strerror or e}); free "
                                   "some space, or start again with another --save") from None
            self.saved = os.path.basename(self.save_path)
        return self.save_path

    def state(self):
        """The TeachState the page shows now."""
        newest = self.session.newest
        classes = self.classes()
        labels = {c.id: c.label for c in classes}
        top = []
        if newest is not None and classes:
            top = [(c.id, labels.get(c.id, f"class {c.id}"), float(c.score))
                   for c in (newest[1].classes or [])[:SHOWN_TOP] if c.id in labels]
        if not classes:
            hint = "add a first class: point the camera at it, type its name and press 'new class'"
        elif not any(c.trainable for c in classes):
            hint = "add a new class: point the camera at it, type its name and press 'new class'"
        elif len(classes) == 1:
            hint = "add a second class, so the model has something to tell apart"
        else:
            hint = "add frames where the model is wrong; save the model when it is right"
        updated = self._served is None or self.session.runner.opened is self._served
        return TeachState(classes, top, newest[0].index if newest else -1, newest[0].time if newest else None,
                          self.version, updated, self.saved, hint)

    def _state_document(self, state=None):
        state = state or self.state()
        return {**state._asdict(), "classes": [c._asdict() for c in state.classes],
                "top": [{"id": i, "label": label, "score": round(score, 4)} for i, label, score in state.top]}

    def _page(self, _request):
        return Reply(200, "text/html; charset=utf-8", TEACH_PAGE.encode())

    def _add(self, request):
        class_id = _action(request.body).get("class_id")
        if isinstance(class_id, bool) or not isinstance(class_id, int):
            raise EdgekitError("give class_id, the number of the class to add the frame to")
        return json_reply(self._state_document(self.add_frame(class_id)))

    def _new(self, request):
        return json_reply(self._state_document(self.new_class(_action(request.body).get("name"))))

    def _save(self, request):
        _action(request.body)
        return json_reply({"saved": self.save()})

    def close(self):
        """Remove the temporary files (call it once the session has ended)."""
        if self._folder:
            shutil.rmtree(self._folder, ignore_errors=True)


# The page: the stream, the live classification, a button per class, a new class, save. It reads the state
# four times a second and rebuilds the class buttons only when the classes change, so that a button does
# not vanish under the pointer. Actions send the token from the page's own address in a header.
TEACH_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>edgekit camera: teach</title>
<style>
body { margin: 0; background: #111; color: #eee; font: 15px sans-serif; }
header, section { padding: 6px 10px; }
#fps { color: #7fd4ff; }
#top { font-size: 28px; font-weight: bold; color: #ffd54f; }
#score { color: #aaa; margin-left: 8px; }
#hint { color: #9ccc65; }
#message { color: #ffab91; min-height: 1.2em; }
img { display: block; max-width: 100vw; max-height: 60vh; }
button { font: inherit; margin: 3px; padding: 5px 10px; }
</style></head>
<body>
<header>edgekit camera &middot; teaching &middot; <span id="fps">starting</span></header>
<img id="view" src="/frame.jpg" alt="camera">
<section><span id="top"></span><span id="score"></span><div id="hint"></div></section>
<section id="classes"></section>
<section><input id="name" placeholder="name of a new class" maxlength="60">
<button id="new">new class</button> <button id="save">save model</button></section>
<section id="message"></section>
<script>
const token = new URLSearchParams(location.search).get("token") || "";
const view = document.getElementById("view");
const $ = (id) => document.getElementById(id);
window.addEventListener("load", () => setTimeout(() => { view.src = "/stream.mjpg"; }, 1000));
if (!token) { $("message").textContent = "opened without its token: open the URL edgekit printed to teach"; }
let shownClasses = "";

async function act(path, body) {
  const reply = await fetch(path, {method: "POST", cache: "no-store",
    headers: {"Content-Type": "application/json", "X-Edgekit-Token": token}, body: JSON.stringify(body)});
  const text = await reply.text();
  if (!reply.ok) { throw new Error(text.trim() || ("HTTP " + reply.status)); }
  return JSON.parse(text);
}

async function run(what, path, body) {
  $("message").textContent = what + "...";
  try {
    const answer = await act(path, body);
    if (answer.saved) { $("message").textContent = "saved to " + answer.saved; }
    else { $("message").textContent = what + ": done"; show(answer); }
    return true;
  } catch (e) { $("message").textContent = e.message; return false; }
}

function show(state) {
  const names = JSON.stringify(state.classes.map((c) => [c.id, c.label, c.trainable]));
  if (names !== shownClasses) {
    shownClasses = names;
    const box = $("classes");
    box.textContent = "";
    for (const c of state.classes.filter((c) => c.trainable)) {
      const button = document.createElement("button");
      button.className = "add";
      button.dataset.classId = c.id;
      button.dataset.label = c.label;
      button.textContent = "add this frame to " + c.label;
      button.addEventListener("click", () => run("adding a frame to " + c.label, "/teach/add", {class_id: c.id}));
      box.appendChild(button);
    }
  }
  for (const button of document.querySelectorAll("button.add")) {
    const c = state.classes.find((c) => String(c.id) === button.dataset.classId);
    button.title = c ? c.shots + " frames added" : "";
  }
  const best = state.top[0];
  $("top").textContent = best ? best.label : "";
  $("score").textContent = best ? best.score.toFixed(2) : "";
  $("hint").textContent = state.hint + (state.updated ? "" : " (updating the model)");
}

async function refresh() {
  try {
    show(await (await fetch("/teach/state", {cache: "no-store"})).json());
    const s = await (await fetch("/stats", {cache: "no-store"})).json();
    $("fps").textContent = s.fps.toFixed(1) + " FPS, invoke " + s.latency_ms.toFixed(1) + " ms";
  } catch (e) { $("fps").textContent = "stopped"; }
}

$("new").addEventListener("click", async () => {
  if (await run("new class " + $("name").value, "/teach/new", {name: $("name").value})) { $("name").value = ""; }
});
$("save").addEventListener("click", () => run("saving", "/teach/save", {}));
setInterval(refresh, 250);
refresh();
</script>
</body></html>
"""
