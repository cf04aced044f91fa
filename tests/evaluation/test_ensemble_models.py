"""Ensembles of two Coral MobileNets: scores equal to the (weighted) mean of the members' own scores,
each member with its own input size; usable by run, bench and eval like a model; bad ensembles refused."""

import json
import os
import shutil

import numpy as np
import pytest
from cli_runner import edgekit

from edgekit.cli.cmd_bench import format_bench
from edgekit.cli.cmd_run import format_run
from edgekit.compiler import check
from edgekit.compiler.ensemble_build import ensemble_file_document, write_ensemble
from edgekit.evaluation import evaluate
from edgekit.runtime import ensemble
from edgekit.runtime.adapters import classify
from edgekit.runtime.interpreter import open_model
from edgekit.runtime.pipeline import Runner
from edgekit.tflite.model import read_model

pytestmark = pytest.mark.usefixtures("no_edgetpu_library", "no_edgetpu_compiler")

SMALL = "mobilenet_v1_0.25_128_quant.tflite"
SYSTEM_PATH = os.environ.get("PATH", "")
MEDIUM = "mobilenet_v1_0.5_160_quant.tflite"


def member_scores(model, image):
    """The model's own scores, as the interpreter leaves them (not through the ensemble's code)."""
    runner = Runner(open_model(str(model), device="cpu"))
    runner.run_image(image)
    return classify.get_scores(runner.interpreter)


def test_scores_are_the_weighted_mean_of_the_members(tmp_path, coral):
    out = tmp_path / "ens" / "ensemble.json"
    build = write_ensemble([coral(SMALL), coral(MEDIUM)], out, weights=[1, 3], labels=coral("imagenet_labels.txt"))
    written = json.loads(out.read_text())
    assert written["format"] == "edgekit-ensemble" and [m["weight"] for m in written["members"]] == [0.25, 0.75]
    assert not os.path.isabs(written["members"][0]["path"])  # relative to the file
    assert written == ensemble_file_document(build)
    assert "not co-compiled" in build.compile_note and written["compile"] == build.compile_note
    opened = ensemble.open_ensemble(out, device="cpu", top_k=3)
    # Each member keeps its own input size.
    assert [r.input_size for r in opened.runners] == [(128, 128), (160, 160)]
    result = opened.run_image(coral("cat.bmp"))
    small, medium = member_scores(coral(SMALL), coral("cat.bmp")), member_scores(coral(MEDIUM), coral("cat.bmp"))
    np.testing.assert_allclose(result.scores, 0.25 * small + 0.75 * medium, atol=1e-6)
    assert opened.labels[result.classes[0].id] == "Egyptian cat"  # 286, as Coral expects of both members


def test_logit_mean_is_the_softmax_of_mean_log_probabilities(tmp_path, coral):
    out = tmp_path / "ensemble.json"
    write_ensemble([coral(SMALL), coral(MEDIUM)], out, combine="logit-mean")
    result = ensemble.open_ensemble(out, device="cpu").run_image(coral("parrot.jpg"))
    # Both outputs are uint8 with scale 1/256: a stored 0 stands for less than half a step.
    floor = 1 / 512
    logs = [np.log(np.clip(member_scores(coral(m), coral("parrot.jpg")).astype(np.float64), floor, None))
            for m in (SMALL, MEDIUM)]
    mean = (logs[0] + logs[1]) / 2
    expected = np.exp(mean - mean.max()) / np.exp(mean - mean.max()).sum()
    np.testing.assert_allclose(result.scores, expected, atol=1e-6)


def test_parameters_against_the_cache(tmp_path, coral):
    params = write_ensemble([coral(SMALL), coral(MEDIUM)], tmp_path / "e.json").parameters
    expected = [check.predict(read_model(coral(m))).parameter_bytes for m in (SMALL, MEDIUM)]
    assert [m.parameter_bytes for m in params.members] == expected
    assert params.total_bytes == sum(expected) and params.fits_cache
    assert json.loads((tmp_path / "e.json").read_text())["parameters"] == {
        "members": [{"model": str(coral(m)), "parameter_bytes": n} for m, n in zip((SMALL, MEDIUM), expected)],
        "total_bytes": sum(expected), "cache_bytes": params.cache_bytes, "fits_cache": True}


def test_run_bench_and_eval_take_the_ensemble_like_a_model(tmp_path, coral):
    out = tmp_path / "ensemble.json"
    result = edgekit("ensemble", coral(SMALL), coral(MEDIUM), "--labels", coral("imagenet_labels.txt"),
                     "--out", out)
    assert result.exit_code == 0, result.stderr
    assert "MiB against the" in result.stdout
    run = edgekit("run", out, coral("cat.bmp"), "--device", "cpu", "--top-k", "3", "--json")
    assert run.exit_code == 0, run.stderr
    document = json.loads(run.stdout)
    assert document["results"][0]["classes"][0]["id"] == 286
    assert "Egyptian cat" in format_run(document)
    bench = edgekit("bench", out, "--device", "cpu", "-n", "3", "--warmup", "1", "--json")
    assert bench.exit_code == 0, bench.stderr
    document = json.loads(bench.stdout)
    assert document["invoke"]["n"] == 3 and "pipeline" in format_bench(document)
    folder = tmp_path / "photos" / "Egyptian cat"
    folder.mkdir(parents=True)
    os.symlink(coral("cat.bmp"), folder / "cat.bmp")
    found = evaluate.evaluate([str(out), coral(SMALL)], tmp_path / "photos", device="cpu",
                              labels_path=coral("imagenet_labels.txt"), progress=False)
    assert found.models[0].top1 == 1.0


def test_moved_ensemble_folder_still_works(tmp_path, coral):
    first = tmp_path / "first"
    first.mkdir()
    for name in (SMALL, MEDIUM):
        shutil.copy(coral(name), first / name)
    write_ensemble([first / SMALL, first / MEDIUM], first / "e.json")
    moved = shutil.move(first, tmp_path / "moved")
    spec = ensemble.read_ensemble(os.path.join(moved, "e.json"))
    assert [os.path.dirname(m.path) for m in spec.members] == [str(moved)] * 2
    assert ensemble.open_ensemble(spec.path, device="cpu").run_image(coral("cat.bmp")).classes


def test_combine_scores_by_hand():
    combined = ensemble.combine_scores([[0.2, 0.8], [0.6, 0.4]], [1, 1])
    np.testing.assert_allclose(combined, [0.4, 0.6])
    logit = ensemble.combine_scores([[0.2, 0.8], [0.8, 0.2]], [1, 1], "logit-mean")
    np.testing.assert_allclose(logit, [0.5, 0.5], atol=1e-7)


def test_compiled_members_fall_back_to_their_cpu_models(tmp_path, coral):
    # What a co-compiled ensemble looks like: compiled twins beside the file, CPU models elsewhere.
    (tmp_path / "ens").mkdir()
    members = []
    for name in (SMALL, MEDIUM):
        twin = name.replace(".tflite", "_edgetpu.tflite")
        shutil.copy(coral(twin), tmp_path / "ens" / twin)
        members.append({"path": twin, "cpu_path": os.path.relpath(coral(name), tmp_path / "ens"), "weight": 1})
    (tmp_path / "ens" / "e.json").write_text(json.dumps({"format": "edgekit-ensemble", "version": 1,
                                                         "members": members}))
    notices = []
    opened = ensemble.open_ensemble(tmp_path / "ens" / "e.json", notice=notices.append)
    assert [o.path for o in opened.opened] == [str(coral(SMALL)), str(coral(MEDIUM))]
    assert len(notices) == 2 and "running its CPU model" in notices[0]
    result = opened.run_image(coral("cat.bmp"))
    expected = (member_scores(coral(SMALL), coral("cat.bmp")) + member_scores(coral(MEDIUM), coral("cat.bmp"))) / 2
    np.testing.assert_allclose(result.scores, expected, atol=1e-6)


def test_members_are_co_compiled_in_one_compiler_call(tmp_path, coral, monkeypatch):
    # tests/compiler/standin/edgetpu_compiler: accepts the real flags, copies each model to <name>_edgetpu.
    standin = os.path.join(os.path.dirname(__file__), os.pardir, "compiler", "standin", "edgetpu_compiler")
    monkeypatch.setenv("EDGETPU_COMPILER", os.path.abspath(standin))
    monkeypatch.setenv("PATH", SYSTEM_PATH)  # the stand-in is a python3 script
    monkeypatch.setenv("EDGETPU_STANDIN_ARGV", str(tmp_path / "argv.json"))
    out = tmp_path / "ens" / "ensemble.json"
    build = write_ensemble([coral(SMALL), coral(MEDIUM)], out)
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert str(coral(SMALL)) in argv and str(coral(MEDIUM)) in argv  # one call, both models
    assert build.compile_note.startswith("co-compiled")
    compiled = [n.replace(".tflite", "_edgetpu.tflite") for n in (SMALL, MEDIUM)]
    assert [m.path for m in build.members] == compiled
    assert [m["path"] for m in json.loads(out.read_text())["members"]] == compiled
    spec = ensemble.read_ensemble(out)
    assert [m.cpu_path for m in spec.members] == [str(coral(SMALL)), str(coral(MEDIUM))]
    assert all(os.path.isfile(m.path) for m in spec.members)


def test_eval_and_ensembles_never_import_tensorflow(tmp_path, coral):
    import subprocess
    import sys

    (tmp_path / "data").mkdir()
    for name in ("cat.bmp", "parrot.jpg"):  # two images, so two workers really start
        os.symlink(coral(name), tmp_path / "data" / name)
    script = (
        "import sys\n"
        "from edgekit.evaluation import evaluate\n"
        "from edgekit.compiler.ensemble_build import write_ensemble\n"
        f"write_ensemble([{str(coral(SMALL))!r}, {str(coral(MEDIUM))!r}], {str(tmp_path / 'e.json')!r})\n"
        f"evaluate.evaluate([{str(tmp_path / 'e.json')!r}], {str(tmp_path / 'data')!r}, "
        f"reference={str(coral(SMALL))!r}, device='cpu', workers=2, progress=False)\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
                          env=dict(os.environ, PATH=SYSTEM_PATH))
    assert done.returncode == 0, done.stderr
