"""`edgekit camera MODEL --teach --serve`: a camera that learns, driven in headless Chromium.

The model is Coral's MobileNet v1 embedding extractor with pycoral's imprinting head appended
(`heads.add_imprinting_head`), its one base class "hot dog" imprinted from pycoral's two hot dog training
pictures. The camera is an MJPEG server on loopback whose picture the test switches between pycoral's
imprinting pictures; the command runs as a user runs it, in its own process. Every wait is bounded by
PATIENCE_S and asserts an outcome, never a speed.
"""

import hashlib
import json
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from browser import DevToolsPage
from cli_runner import edgekit, run_json
from fake_camera import FakeCamera
from PIL import Image

from edgekit.errors import EdgekitError
from edgekit.runtime.adapters import common
from edgekit.runtime.camera import CameraSession
from edgekit.runtime.interpreter import open_model
from edgekit.tflite.heads import add_imprinting_head
from edgekit.tflite.metadata import embed_metadata, read_edgekit_metadata
from edgekit.tflite.model import read_model

pytestmark = pytest.mark.usefixtures("no_edgetpu_library")

EXTRACTOR = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
PATIENCE_S = 60
# The camera's frames: square, as the classifier's input is (it resizes without keeping the aspect anyway).
FRAME_SIZE = (336, 336)


def imprinting(name):
    return f"imprinting/{name}.bmp"


def embedding(opened, path):
    """The extractor's dequantized embedding of a picture, resized as the camera's classifier path does."""
    picture = Image.open(path).convert("RGB").resize((224, 224), Image.BILINEAR)
    common.set_input(opened.interpreter, np.asarray(picture)[None])
    opened.interpreter.invoke()
    return common.output_tensor(opened.interpreter, 0).ravel()


@pytest.fixture(scope="module")
def imprinting_model(tmp_path_factory):
    """A real imprinting model: the extractor + pycoral's head, one base class "hot dog" (named in its metadata)."""
    from testdata import coral_file

    extractor = coral_file(EXTRACTOR)
    opened = open_model(str(extractor), device="cpu")
    hot_dog = sum(embedding(opened, coral_file(imprinting(f"hotdog_train_{i}"))) for i in (0, 1))
    model = add_imprinting_head(extractor.read_bytes(), hot_dog[None])
    path = tmp_path_factory.mktemp("teach") / "hotdog_imprinting.tflite"
    path.write_bytes(embed_metadata(model, {"task": "classification", "labels": ["hot dog"]}))
    return path


@pytest.fixture
def camera(coral):
    cameras = []

    def start(name):
        cameras.append(FakeCamera(coral(imprinting(name)), size=FRAME_SIZE, fps=30, quality=95, patience_s=PATIENCE_S * 10))
        return cameras[-1]

    yield start
    for each in cameras:
        each.close()


def get_json(url):
    with urllib.request.urlopen(url, timeout=PATIENCE_S) as response:
        return json.loads(response.read())


def post(url, document, token=None):
    """(status, body text) of a POST of `document` as JSON, with the token header when given."""
    headers = {"Content-Type": "application/json", **({"X-Edgekit-Token": token} if token else {})}
    request = urllib.request.Request(url, json.dumps(document).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=PATIENCE_S) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_until(read, accept, what):
    """Call `read()` until `accept(value)`; that value. Fails naming `what` after PATIENCE_S."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        value = read()
        if accept(value):
            return value
        assert time.monotonic() < deadline, f"{what}: still {value!r} after {PATIENCE_S} s"
        time.sleep(0.05)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


class CameraCommand:
    """`edgekit camera ... --teach` in its own process; `url` is the page's address with its token."""

    def __init__(self, *args):
        self.process = subprocess.Popen([sys.executable, "-m", "edgekit", "camera", *map(str, args)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines, self.stderr = queue.Queue(), []
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.url, self.save_path = self._announced()
        except BaseException:
            self.stop()
            raise
        self.base, _, query = self.url.partition("?")
        self.token = query.removeprefix("token=")

    def _announced(self):
        """(URL with token, save path) from the line the command prints once the page is up."""
        deadline = time.monotonic() + PATIENCE_S
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "".join(self.stderr)
            found = re.match(r"edgekit: teach at (\S+) \('save model' writes (.+)\)$", line)
            if found:
                return found.groups()

    def _read(self):
        for line in self.process.stderr:
            self.stderr.append(line)
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def state(self):
        return get_json(self.base + "teach/state")

    def stop(self):
        """SIGTERM (the camera's clean end), and the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(PATIENCE_S)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(PATIENCE_S)


def frames_after(command, moment):
    """Wait until the camera has processed a frame captured after `moment` (Unix time)."""
    wait_until(command.state, lambda s: (s["frame_time"] or 0) > moment, "a frame of the new picture")


def click_new_class(page, name):
    page.evaluate(f"document.getElementById('name').value = {json.dumps(name)};"
                  "document.getElementById('new').click()")
    page.wait_for(f"document.querySelector('button.add[data-label={json.dumps(name)}]') !== null")


def test_teach_cat_and_dog_in_the_browser_then_save(imprinting_model, camera, coral, tmp_path, record_property):
    model = tmp_path / "pets.tflite"
    shutil.copyfile(imprinting_model, model)
    before = sha256(model)
    cam = camera("cat_train_0")
    command = CameraCommand(model, "--source", cam.url, "--device", "cpu", "--teach", "--serve", "127.0.0.1:0")
    try:
        assert command.url.startswith("http://127.0.0.1:") and len(command.token) >= 16
        assert command.save_path == str(tmp_path / "pets_taught.tflite")
        with DevToolsPage(command.url, tmp_path, "the teach page test", timeout_s=PATIENCE_S) as page:
            # Before any class: the base model's "hot dog" is not shown, the page asks for a first class, and
            # the picture streams.
            hint = page.wait_for("document.getElementById('hint').textContent")
            assert hint.startswith("add a first class")
            assert page.evaluate("document.getElementById('top').textContent") == ""
            assert page.evaluate("document.querySelectorAll('button.add').length") == 0
            page.wait_for("document.getElementById('view').naturalWidth", PATIENCE_S)
            frames_after(command, time.time())
            # A refused action says why on the page.
            page.evaluate("document.getElementById('new').click()")
            page.wait_for("document.getElementById('message').textContent === 'type a name for the new class first'")

            clicked = time.monotonic()
            click_new_class(page, "cat")
            wait_until(command.state, lambda s: s["version"] == 1 and s["updated"], "the model with cat in use")
            record_property("first_class_in_use_s", round(time.monotonic() - clicked, 2))

            frames_after(command, cam.show(coral(imprinting("dog_train_0"))))
            click_new_class(page, "dog")
            state = wait_until(command.state, lambda s: s["version"] == 2 and s["updated"], "the model with dog")
            assert [(c["id"], c["label"], c["shots"]) for c in state["classes"]] == [(0, "cat", 1), (1, "dog", 1)]

            # Without the token (or with a wrong one) nothing changes.
            for token in (None, "not-the-token"):
                assert post(command.base + "teach/new", {"name": "intruder"}, token)[0] == 403
                assert post(command.base + "teach/add", {"class_id": 0}, token)[0] == 403
                assert post(command.base + "teach/save", {}, token)[0] == 403
            after = command.state()
            assert (after["version"], after["classes"], after["saved"]) == (2, state["classes"], None)
            assert not (tmp_path / "pets_taught.tflite").exists()

            for name, label in (("cat_test_0", "cat"), ("dog_test_0", "dog"), ("cat_test_0", "cat")):
                cam.show(coral(imprinting(name)))
                page.wait_for(f"document.getElementById('top').textContent === {json.dumps(label)}")

            page.evaluate("document.getElementById('save').click()")
            message = page.wait_for("document.getElementById('message').textContent.startsWith('saved to ') &&"
                                    " document.getElementById('message').textContent")
            assert message == f"saved to {command.save_path}"
            assert command.state()["saved"] == "pets_taught.tflite"  # the name only: the page is not the disk's
    finally:
        code = command.stop()
    assert code == 0, "".join(command.stderr)
    assert "ended: signal SIGTERM" in command.stderr[-1]
    assert sha256(model) == before

    saved = tmp_path / "pets_taught.tflite"
    assert read_edgekit_metadata(read_model(saved))["labels"] == ["cat", "dog"]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(saved))
    interpreter.allocate_tensors()
    for name, expected in (("cat_test_0", 0), ("dog_test_0", 1)):
        picture = Image.open(coral(imprinting(name))).convert("RGB").resize((224, 224), Image.BILINEAR)
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.asarray(picture)[None])
        interpreter.invoke()
        scores = interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).ravel()
        assert scores.shape == (2,) and int(np.argmax(scores)) == expected, (name, scores)
    # `edgekit run` names the classes from the saved metadata.
    document = run_json(saved, [coral(imprinting("dog_test_0"))], top_k=1, device="cpu")
    assert document["results"][0]["classes"][0]["label"] == "dog"


class Background:
    """A CameraSession with a Teacher attached, run in a thread (no browser: the actions' answers)."""

    def __init__(self, model, source, keep_classes, save_path=None):
        from edgekit.learn.teach import Teacher

        self.teacher = Teacher(model, keep_classes=keep_classes, save_path=save_path)
        self.session = CameraSession(str(model), source, device="cpu", serve="127.0.0.1:0", loop=True)
        self.teacher.attach(self.session, device="cpu")
        self.base = self.session.server.url
        self.thread = threading.Thread(target=self.session.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.session.newest, lambda newest: newest is not None, "a first frame")

    def act(self, action, document, token=True):
        return post(self.base + "teach/" + action, document, self.session.server.token if token else None)

    def stop(self):
        self.session.stop()
        self.thread.join(PATIENCE_S)
        assert not self.thread.is_alive()
        self.teacher.close()


def test_keep_classes_adds_after_the_base_class_and_refuses_bad_actions(imprinting_model, coral, tmp_path):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    shutil.copyfile(coral(imprinting("cat_train_0")), pictures / "cat.bmp")
    run = Background(imprinting_model, pictures, keep_classes=True, save_path=tmp_path / "out" / "kept.tflite")
    try:
        state = get_json(run.base + "teach/state")
        assert [(c["label"], c["trainable"]) for c in state["classes"]] == [("hot dog", False)]
        assert state["top"][0]["label"] == "hot dog"  # the base class runs from the start
        with urllib.request.urlopen(run.base + "?token=x", timeout=PATIENCE_S) as response:
            page = response.read().decode()
        assert "new class" in page and "save model" in page and "X-Edgekit-Token" in page

        refusals = {
            ("save", "{}"): "nothing taught yet: add a frame to a class before saving",
            ("new", '{"name": "  "}'): "type a name for the new class first",
            ("new", '{"name": "Hot  Dog"}'): "there is a class named 'Hot Dog' already: use its 'add this frame' "
                                             "button",
            # The engine's own one-line errors, passed on (their start is enough here).
            ("add", '{"class_id": 0}'): "class 0 (hot dog) is one of the base model's classes",
            ("add", '{"class_id": 5}'): "class id 5 is out of range",
            ("add", '{"class_id": "cat"}'): "give class_id, the number of the class to add the frame to",
            ("add", "[1]"): "the request body must be a JSON object",
        }
        for (action, body), message in refusals.items():
            code, text = post(run.base + "teach/" + action, json.loads(body), run.session.server.token)
            assert code == 400 and text.startswith(message) and text.count("\n") == 1, (action, body, text)
        assert get_json(run.base + "teach/state")["version"] == 0

        code, text = run.act("new", {"name": "cat"})
        assert code == 200, text
        assert [(c["id"], c["label"], c["trainable"]) for c in json.loads(text)["classes"]] == [
            (0, "hot dog", False), (1, "cat", True)]
        code, text = run.act("add", {"class_id": 1})
        assert code == 200 and json.loads(text)["classes"][1]["shots"] == 2
        wait_until(lambda: get_json(run.base + "teach/state"),
                   lambda s: s["updated"] and s["top"] and s["top"][0]["label"] == "cat", "cat on top")
        code, text = run.act("save", {})
        assert (code, json.loads(text)) == (200, {"saved": str(tmp_path / "out" / "kept.tflite")})
        # A model whose input differs cannot take over mid-run.
        other = open_model(str(coral("mobilenet_v1_0.25_128_quant.tflite")), device="cpu")
        with pytest.raises(EdgekitError, match=r"its input \(\[1, 128, 128, 3\] uint8\) differs from the running "
                                               r"model's \(\[1, 224, 224, 3\] uint8\)"):
            run.session.replace_model(other)
    finally:
        run.stop()
    saved = read_edgekit_metadata(read_model(tmp_path / "out" / "kept.tflite"))
    assert saved["labels"] == ["hot dog", "cat"] and saved["task"] == "classification"
    document = run_json(tmp_path / "out" / "kept.tflite", [coral(imprinting("cat_test_0"))], top_k=1, device="cpu")
    assert document["results"][0]["classes"][0]["label"] == "cat"


def test_teach_options_are_checked_before_the_camera_opens(imprinting_model, coral, tmp_path):
    source = tmp_path / "no-such-camera.mp4"  # never opened: the options fail first
    cases = [
        (["--teach"], "--teach needs --serve HOST:PORT: the classes are taught from that browser page "
                      "(e.g. --serve 127.0.0.1:8080)"),
        (["--keep-classes"], "--keep-classes goes with --teach: add --teach --serve HOST:PORT to teach the model "
                             "from a browser page"),
        (["--save", tmp_path / "x.tflite"], "--save goes with --teach: add --teach --serve HOST:PORT to teach "
                                            "the model from a browser page"),
        (["--teach", "--serve", "127.0.0.1:0", "--save", imprinting_model],
         f"--save {imprinting_model}: that is the model being taught, which edgekit never overwrites; give "
         "another file name"),
    ]
    for flags, message in cases:
        result = edgekit("camera", imprinting_model, "--source", source, *flags)
        assert result.exit_code != 0 and result.stderr.strip() == f"edgekit: error: {message}", flags
    plain = coral("mobilenet_v2_1.0_224_quant.tflite")
    result = edgekit("camera", plain, "--source", source, "--teach", "--serve", "127.0.0.1:0")
    assert result.exit_code != 0
    assert result.stderr.startswith(f"edgekit: error: {plain}: not an imprinting model: ")
    assert not list(tmp_path.glob("*taught*")) and not (tmp_path / "x.tflite").exists()
