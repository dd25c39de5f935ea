"""The Blender add-on: the extension zip (`make addon`), installed through Blender's own
extension install, used as the panel uses it on a real clip (addon_check.py), and its
background jobs on their own."""

from __future__ import annotations

import importlib.util
import json
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import ASL, bpy_env, need_bpy, run_script

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def addon_zip(tmp_path_factory) -> Path:
    need_bpy()  # Blender's extension builder ships with the bpy module
    return _tool("build_addon").build(tmp_path_factory.mktemp("dist"))


def test_zip_holds_the_manifest_entry_point_and_one_wheel(addon_zip):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert addon_zip.name == f"handmocap-{version}.zip"
    with zipfile.ZipFile(addon_zip) as z:
        names = set(z.namelist())
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
        wheel_name = f"wheels/handmocap-{version}-py3-none-any.whl"
        assert {"blender_manifest.toml", "__init__.py", wheel_name} == names
        assert manifest["version"] == version and manifest["id"] == "handmocap"
        assert manifest["blender_version_min"] == "4.2.0"
        assert manifest["wheels"] == [f"./{wheel_name}"]
        wheel = zipfile.ZipFile(z.open(wheel_name))
    inside = set(wheel.namelist())
    for needed in ("handmocap/blender_addon/addon.py", "handmocap/core/take.py",
                   "handmocap/core/assets/openhand/OPENHAND_RIGHT.pkl",
                   f"handmocap-{version}.dist-info/RECORD"):  # fmt: skip
        assert needed in inside, needed
    # not for Blender: the demo clip, training, the extension's own files
    assert not [n for n in inside if "/demo/" in n or "training" in n or "/extension/" in n]


@pytest.mark.slow
def test_addon_installs_captures_cancels_resumes_builds_retargets_exports(addon_zip, tmp_path):
    """The whole panel workflow, headless, with torch and the backends blocked in Blender."""
    if not ASL.is_file():
        pytest.skip(f"the real clip is not here: {ASL}")
    out = tmp_path / "out.json"
    work = tmp_path / "work"
    work.mkdir()
    run_script(HERE / "addon_check.py", addon_zip, out, work, ASL, sys.executable,
               env=bpy_env(tmp_path))  # fmt: skip
    r = json.loads(out.read_text())

    # installed from the zip (the wheel's copy, not the checkout), enabled, registered
    assert r["install"] == ["FINISHED"] and r["enabled"]
    assert str(tmp_path / "b" / "extensions") in r["addon_file"]
    assert all(r["registered"].values()) and r["scene_settings"]
    assert r["blocked_loaded"] == []  # no torch, scipy, cv2, mediapipe or av inside Blender
    # polls refuse what cannot run yet
    assert not r["capture_poll_unsaved"] and not r["build_poll_no_take"]
    assert not r["retarget_poll_no_target"] and not r["build_poll_again"]
    assert "backends ready: acr, mediapipe" in r["check"] and "torch" in r["check"]

    # a broken video: the capture fails with the command's own message
    assert r["failed"]["state"] == "failed" and "not a video file" in r["failed"]["error"]
    # cancelled after two chunks of 10: those are kept, the take is unfinished
    c = r["cancelled"]
    assert c["state"] == "cancelled" and not c["complete"]
    assert 20 <= c["frames"] < 60 and c["frames"] % 10 == 0
    assert r["takes_after_cancel"] == [["asl_hand.25fps", c["frames"], False]]
    # capture again resumes where it stopped and finishes the 60 frames asked for
    res = r["resumed"]
    assert res["state"] == "done" and res["complete"] and res["frames"] == 60
    assert res["frame_index"] == [0, 59]
    assert any("resuming" in m and f"at frame {c['frames']}" in m for m in res["messages"])
    item = r["take_item"]
    assert item["frames"] == 60 and item["fps"] == 25.0 and item["complete"]
    assert item["right"] > 0.9  # the clip shows one right hand

    # built: the right hand keyed on every frame it is there; re-baked with other smoothing
    assert r["build"] == ["FINISHED"] and list(r["hands"]) == ["right"]
    assert r["hands"]["right"]["action"] == "asl_hand.25fps.right"
    assert len(r["hands"]["right"]["frames"]) >= 50
    assert True in r["camera_background"]
    assert r["bake"] == ["FINISHED"] and r["bake_changed"] > 1e-3
    # retargeted onto Rigify, recognised automatically
    assert r["retarget"] == ["FINISHED"] and r["rig_action"] == "asl_hand.25fps.rig"
    assert len(r["rig_keyed"]) >= 50
    assert r["export_hands"] == ["FINISHED"] and r["export_character"] == ["FINISHED"]
    assert r["preview"]["state"] == "done" and Path(r["preview"]["file"]).stat().st_size > 0
    # disabling unregisters everything
    assert not any(r["after_disable"].values())

    _check_fbx(work)

    # every panel draws in every state
    states = r["draws"]
    assert set(states) >= {"fresh", "no_take", "failed", "capturing", "progress",
                           "cancelled", "done", "preview"}  # fmt: skip
    labels = {k: [e[-1] for e in log if e[0] in ("label", "progress")] for k, log in
              states.items()}  # fmt: skip
    assert "Save the .blend: takes go beside it" in labels["fresh"]
    assert "No take yet: capture a video above" in labels["no_take"]
    assert "Capture failed:" in labels["failed"]
    assert any("starting" in t for t in labels["capturing"])
    assert any(t.startswith("20/60 frames") or "/60 frames" in t for t in labels["progress"])
    assert any("cancelled after" in t for t in labels["cancelled"])
    buttons = {k: [e[2] for e in log if e[0] == "operator" and e[1] == "handmocap.capture"]
               for k, log in states.items()}  # fmt: skip
    assert buttons["cancelled"] == ["Resume Capture"] and buttons["done"] == ["Capture Again"]
    assert any("Drawing the preview" in t for t in labels["preview"])
    enabled = {e[1]: e[4] for e in states["done"] if e[0] == "operator"}
    assert enabled["handmocap.build"] and not enabled["handmocap.bake"]  # greyed: not built
    assert not enabled["handmocap.retarget"]  # greyed: no target yet
    # the README's picture of the panel is drawn from these records
    picture = _tool("draw_addon_panel").draw(r, tmp_path / "panel.png")
    assert picture.stat().st_size > 10_000


def _check_fbx(work: Path) -> None:
    """The FBX files, read by ufbx: the hand's bones and the rig's fingers, animated. (ufbx's
    objects point into the scene they came from: each is dropped before its scene.)"""
    ufbx = pytest.importorskip("ufbx", reason="ufbx is the independent FBX reader")
    hands = ufbx.load_file(str(work / "hands.fbx"))
    names = {n.name for n in hands.nodes}
    assert "wrist.R" in names and "index3.R" in names
    assert len(hands.anim_stacks) >= 1
    character = ufbx.load_file(str(work / "character.fbx"))
    assert {"DEF-f_index.01.R", "f_index.01.R"} & {n.name for n in character.nodes}
    stack = character.anim_stacks[0]
    start, stop = stack.time_begin, stack.time_end
    assert stop - start >= 50 / 25 - 1e-6
    angles = []
    for t in np.linspace(start, stop, 12):
        evaluated = ufbx.evaluate_scene(character, stack.anim, float(t))  # owns its nodes
        nodes = {n.name: n for n in evaluated.nodes}
        w = nodes["f_index.01.R"].local_transform.rotation.w
        angles.append(2 * np.degrees(np.arccos(min(1.0, abs(w)))))
        del nodes, evaluated
    assert np.ptp(angles) > 5  # the finger moves over the clip
    del stack, character, hands


# --- the background job, without Blender ----------------------------------------------------


def test_job_reads_a_command_json_and_its_errors(tmp_path):
    from handmocap.blender_addon.jobs import DONE, FAILED, Job

    check = Job(sys.executable, ["check", "--json"], "Checking").start()
    assert check.wait(120) and check.state == DONE
    assert check.stdout_json()["handmocap"]
    missing = tmp_path / "missing.mp4"
    bad = Job(sys.executable, ["capture", str(missing), "-o", str(tmp_path / "x.take"),
                               "--progress", "json"], "Capturing").start()  # fmt: skip
    assert bad.wait(120) and bad.state == FAILED
    assert str(missing) in bad.error and "error" not in bad.error.split(":")[0]
    nothing = Job(str(tmp_path / "no-python"), ["check"], "Checking").start()
    assert nothing.state == FAILED and "cannot run" in nothing.error
    assert not nothing.poll()


def test_job_cancel_keeps_the_finished_chunks(tmp_path):
    if not ASL.is_file():
        pytest.skip(f"the real clip is not here: {ASL}")
    from handmocap.blender_addon.jobs import CANCELLED, Job
    from handmocap.core.take import read_take, resume_frame

    take = tmp_path / "clip.take"
    job = Job(
        sys.executable,
        [
            "capture",
            str(ASL),
            "-o",
            str(take),
            "--backend",
            "mediapipe",
            "--batch",
            "8",
            "--progress",
            "json",
        ],
        "Capturing",
    ).start()
    while job.poll() and job.done < 16:
        pass
    job.cancel()
    assert job.wait(60) and job.state == CANCELLED
    assert job.total == 325 and 16 <= job.done < 325
    kept = read_take(take)
    assert not kept.manifest.complete and kept.num_frames >= 16
    assert resume_frame(take) == kept.num_frames  # a capture again starts after them
