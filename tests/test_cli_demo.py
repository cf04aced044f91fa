"""`edgekit demo`, what `make demo` runs on a fresh machine: every step gives the right answer, both the full
EfficientNet-Lite0 conversion demo and the runtime-only one."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit import demo
from edgekit.cli import cli
from edgekit.cli.cmd_demo import demo_document, format_demo

pytestmark = pytest.mark.usefixtures("no_edgetpu_compiler")

CAT_CLASSES = {281, 282, 283, 284, 285}   # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.mark.slow
def test_full_demo_converts_lite0_and_classifies_photos(tmp_path):
    assert demo.full_demo_available()  # the dev extra brings the demo extra
    out = tmp_path / "demo"
    result = demo.run_demo(str(out), iterations=3)
    assert result.kind == "efficientnet-lite0"
    summary = demo_document(result)
    # Every op of the converted model maps, and its parameters fit the on-chip cache.
    assert summary["check"]["tpu"] == summary["check"]["ops"] > 60 and summary["check"]["cpu"] == 0
    assert summary["convert"]["calibration"]["used"] == demo.CALIBRATION_CROPS
    assert summary["convert"]["compile"]["ran"] is False
    top = {Path(r["image"]).stem: r["classes"][0] for r in summary["run"]["results"]}
    assert set(top) == set(demo.PHOTOS_TO_CLASSIFY)
    assert top["chelsea"]["id"] in CAT_CLASSES and top["chelsea"]["score"] > 0.5, top["chelsea"]
    assert top["coffee"]["id"] == ESPRESSO and top["coffee"]["label"] == "espresso"
    assert all(Path(r["saved"]).is_file() for r in summary["run"]["results"])
    assert summary["bench"]["invoke"]["n"] == 3
    assert Path(summary["files"]["report"]).is_file() and summary["files"]["compiled model"] is None
    assert not list(out.rglob(".*"))
    text = format_demo(result)
    assert "Egyptian cat" in text and "espresso" in text and "Mapped to Edge TPU" in text
    assert f"{summary['check']['ops']} of {summary['check']['ops']} ops predicted on the Edge TPU" in text
    assert "not compiled   edgetpu_compiler was not found" in text
    json.dumps(summary)   # what `edgekit demo --json` prints


def test_runtime_demo_builds_checks_runs_and_benchmarks(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--runtime-only", "--out", str(out), "-n", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["check"]["tpu"] == summary["check"]["ops"] == 4 and summary["check"]["cpu"] == 0
    top = {Path(r["image"]).stem: r["classes"][0]["label"] for r in summary["run"]["results"]}
    assert top == {"sky": "blue", "grass": "green", "tomato": "red", "lemon": "yellow"}
    assert all(Path(r["saved"]).is_file() for r in summary["run"]["results"])
    assert summary["bench"]["invoke"]["n"] == 3 and summary["bench"]["pipeline"]["fps"] > 0
    assert (out / "colours.tflite").is_file() and not list(out.rglob(".*"))


def test_runtime_demo_readable_output(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--runtime-only", "--out", str(tmp_path / "demo"), "-n", "2"])
    assert result.exit_code == 0, result.output
    assert "Mapped to Edge TPU" in result.stdout and "yellow" in result.stdout and "fps" in result.stdout
    assert "edgekit[demo]" in result.stdout


def test_calibration_crops_are_seeded_and_stratified(tmp_path):
    first = demo.write_calibration_crops(tmp_path / "a", count=20)
    second = demo.write_calibration_crops(tmp_path / "b", count=20)
    files = sorted(p.relative_to(first) for p in Path(first).rglob("*.png"))
    assert len(files) == 20 and len({f.parent for f in files}) == len(demo.CALIBRATION_PHOTOS)
    for name in files:
        assert (Path(first) / name).read_bytes() == (Path(second) / name).read_bytes()
