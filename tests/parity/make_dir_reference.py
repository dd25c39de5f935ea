"""Write tests/data/dir_reference_{release,latest}.npz: official DIR outputs on a real image.

    python tests/parity/make_dir_reference.py RELEASE_CHECKOUT LATEST_CHECKOUT

The two arguments are exported checkouts of PengfeiRen96/DIR (never copied into handmocap):
"release" is commit 329e381, the code of the released checkpoint, whose ``InitRegressor``
passes the LEFT hand's parameters on as ``pd_mano_para_right`` (fixed in 5af5ee0); "latest" is
e309457. For each, the official ``DIR(21, mano_path, root_joint=0)`` is built on CPU with the
open hand model in MANO vertex order (``official_dir.py``), filled with the deterministic
weights of :func:`deterministic_state`, and run in fp32 on a fixed square crop of a two-hand
photo (``google_sample_woman_hands.jpg``, Apache-2.0, see shared/realdata/SOURCES.md).
The stage-0 (init regressor), stage-1 and stage-2 (decoder) results of both hands are saved,
meshes every ``mesh_step``-th vertex, with the final segmentation, dense map and projected
bone features. ``tests/core/test_dir_parity.py`` runs the port on the same input and weights.

Also writes tests/data/dir_official_keys.json: the latest network's state-dict key -> shape.
The hand-model buffers (keys containing "mano_layer_") are written with real MANO's shapes
(778 vertices, 1538 faces), as in the released checkpoint, which embeds MANO; here the
network is built with the open hand model (2793 vertices) instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import deterministic  # noqa: E402
import official_dir  # noqa: E402

IMAGE = HERE.parents[2] / "shared" / "realdata" / "mediapipe_rs" / "google_sample_woman_hands.jpg"
# Square crop (x0, y0, side) of the 640x960 photo: both raised hands (the top one over the
# forehead, the bottom one in front of the chest) and the face between them.
CROP = (0, 280, 500)
SIZE = 256
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
OUT = HERE.parent / "data"
KEYS = OUT / "dir_official_keys.json"
MESH_STEP = 7  # every 7th mesh vertex is saved
CHANNEL_STEP = 8  # every 8th channel of the large feature maps is saved
SIDES = ("left", "right")
PARAM_SCALE = 61  # of the 64 per-hand values: rot6d 0:6, PCA 6:51, betas 51:61, (s, tx, ty)
SCALE_BIAS = 4.0  # see adjust()
SHIFT_GAIN = 0.25
INIT_POSE_GAIN = 8.0
# The linear layers whose output is the 64 parameters of one hand.
HAND_HEADS = tuple(
    f"{prefix}.mano_{side}"
    for prefix in (
        "init_regressor",
        "decoder.projecter_4.regressor",
        "decoder.projecter_3.regressor",
    )
    for side in SIDES
)
# Real MANO's hand-model buffer shapes, written to the key list instead of the open model's.
MANO_BUFFER_SHAPES = {
    "th_betas": [1, 10],
    "th_shapedirs": [778, 3, 10],
    "th_posedirs": [778, 3, 135],
    "th_v_template": [1, 778, 3],
    "th_J_regressor": [16, 778],
    "th_weights": [778, 16],
    "th_faces": [1538, 3],
    "th_hands_mean": [1, 45],
    "th_comps": [45, 45],
    "th_selected_comps": [45, 45],
}


def is_constant(name: str) -> bool:
    """Whether a state-dict entry is data rather than a learned weight: kept as built.

    The hand-model buffers of the MANO layers, the pixel-centre grid of the bone projection
    (``img_gird``) and the class weights of the (eval-unused) segmentation loss.
    """
    return "mano_layer_" in name or name.endswith(("img_gird", "seg_loss.weight"))


def adjust(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tune the deterministic weights of the six hand heads so that the hands project sensibly.

    Returns a new dict; the port's parity test applies the same function. Each head is a
    linear layer giving one hand's 64 values (rot6d 0:6, PCA 6:51, betas 51:61, s, tx, ty),
    with uv = s * xyz[:2] + (tx, ty), xyz in metres and uv normalised to [-1, 1].

    - bias of s = ``SCALE_BIAS`` in every head: random weights would give s near 0, putting all
      joints on one pixel; s near 4 makes a hand span about a third of the crop.
    - weight rows of tx, ty times ``SHIFT_GAIN`` in every head: keeps the decoder stages' uv
      inside the image (their features are larger than the init regressor's).
    - weight rows of rot6d, PCA and betas times ``INIT_POSE_GAIN`` in the two init-regressor
      heads, whose pooled input features are small: gives stage 0 a posed hand and shape
      (PCA rms about 0.5, as the decoder stages have) instead of the mean pose.
    """
    out = dict(state)
    for head in HAND_HEADS:
        weight = out[f"{head}.weight"].clone()
        bias = out[f"{head}.bias"].clone()
        bias[PARAM_SCALE] = SCALE_BIAS
        weight[PARAM_SCALE + 1 :] *= SHIFT_GAIN
        if head.startswith("init_regressor."):
            weight[:PARAM_SCALE] *= INIT_POSE_GAIN
        out[f"{head}.weight"], out[f"{head}.bias"] = weight, bias
    return out


def deterministic_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The official network's weights for the reference: ``deterministic.fill`` by official
    name for every learned entry, the constants of :func:`is_constant` as built, then
    :func:`adjust`."""
    filled = deterministic.fill(state)
    return adjust({k: state[k] if is_constant(k) else filled[k] for k in state})


def network_input() -> tuple[np.ndarray, torch.Tensor]:
    """The uint8 RGB crop (SIZE x SIZE x 3) and the normalised NCHW float32 batch of one."""
    x0, y0, side = CROP
    frame = cv2.imread(str(IMAGE))
    crop = cv2.resize(frame[y0 : y0 + side, x0 : x0 + side], (SIZE, SIZE), cv2.INTER_LINEAR)
    image = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
    x = (image.astype(np.float32) / 255.0 - np.float32(MEAN)) / np.float32(STD)
    return image, torch.from_numpy(x.transpose(2, 0, 1).copy())[None]


def write_keys(shapes: dict[str, list[int]]) -> None:
    """The key list, with real MANO's shapes for the hand-model buffers."""
    shapes = dict(shapes)
    for k in shapes:
        buffer = k.rsplit(".", 1)[-1]
        if "mano_layer_" in k and buffer in MANO_BUFFER_SHAPES:
            shapes[k] = MANO_BUFFER_SHAPES[buffer]
    lines = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in shapes.items())
    KEYS.write_text("{\n" + lines + "\n}\n")


def bone_mask(projecter, joint_uv: torch.Tensor) -> torch.Tensor:
    """(20, S, S) bool: the pixels within reach of each bone in the official bone projection.

    With all-ones joint features, ``bone_proj`` gives weight_a + weight_b = 1 on the mask and
    0 off it.
    """
    ones = torch.ones(joint_uv.shape[0], joint_uv.shape[1], 1)
    return projecter.bone_proj(joint_uv, ones)[0] > 0.5


def run(repo: Path) -> tuple[dict[str, np.ndarray], dict[str, torch.Tensor]]:
    """The reference arrays of one checkout, and its (unfilled) state dict."""
    module = official_dir.load_official(repo)
    torch.manual_seed(0)
    net = module.DIR(21, official_dir.MANO_ROOT, root_joint=0).eval()
    state = net.state_dict()
    net.load_state_dict(deterministic_state(state))
    image, x = network_input()
    with torch.no_grad():
        feats = net.backbone(x)
        init = net.init_regressor(feats[-1])
        decoded = net.decoder(feats, init)
        outs, loss = net({"img": x}, None, None)
    stages = [init] + decoded["result_list"]
    for got, want in zip(outs, stages, strict=False):  # the direct calls = the official forward
        for k, v in got.items():
            if v is not None:
                assert torch.equal(v, want[k]), k
    out: dict[str, np.ndarray] = {"image": image, "mesh_step": np.array(MESH_STEP)}
    out["channel_step"] = np.array(CHANNEL_STEP)
    for i, c in enumerate(feats):
        out[f"backbone_c{i + 1}_mean"] = c[0].mean((1, 2)).numpy()
    out["s0_passed_mano_para_right"] = init["pd_mano_para_right"][0].numpy()
    # stage 0: the values behind the dict (release's dict holds the left values as right ones)
    init_direct = _init_values(net.init_regressor, feats[-1])
    for i, stage in enumerate(stages):
        values = init_direct if i == 0 else stage
        out[f"s{i}_offset"] = stage["pd_offset"][0].numpy()
        for side in SIDES:
            p = f"s{i}_{side}_"
            out[p + "mano_para"] = values[f"pd_mano_para_{side}"][0].numpy()
            out[p + "proj"] = stage[f"pd_proj_{side}"][0].numpy()
            out[p + "joint_xyz"] = stage[f"pd_joint_xyz_{side}"][0].numpy()
            out[p + "joint_uv"] = stage[f"pd_joint_uv_{side}"][0].numpy()
            out[p + "mesh_xyz"] = stage[f"pd_mesh_xyz_{side}"][0, ::MESH_STEP].numpy()
            out[p + "mesh_uv"] = stage[f"pd_mesh_uv_{side}"][0, ::MESH_STEP].numpy()
            if i == 0:
                out[p + "mano_pose"] = stage[f"pd_mano_pose_{side}"][0].numpy()
                out[p + "mano_beta"] = stage[f"pd_mano_beta_{side}"][0].numpy()
            else:
                projecter = net.decoder.projecter_4 if i == 1 else net.decoder.projecter_3
                uv = stage[f"pd_joint_uv_{side}"]
                out[p + "bone_mask"] = bone_mask(projecter, uv).numpy()
                out[p + "joint_feat"] = stage[f"joint_feat_{side}"][0].numpy()
        if i > 0:
            out[f"s{i}_img_feat"] = stage["img_feat"][0, ::CHANNEL_STEP].numpy()
    out["seg"] = decoded["seg"][0].numpy()
    out["dense"] = decoded["dense"][0].numpy()
    out["proj_feat"] = decoded["proj_feat"][0, ::CHANNEL_STEP].numpy()
    assert not loss
    return out, state


def _init_values(init_regressor, c4: torch.Tensor) -> dict[str, torch.Tensor]:
    """Both hands' 64 parameters as the init regressor's heads compute them.

    In release, the returned dict's ``pd_mano_para_right`` is the left hand's; the heads are
    called on the same attention-pooled features here to get the true right-hand values.
    """
    with torch.no_grad():
        values = {}
        for side in SIDES:
            attention = getattr(init_regressor, f"attention_{side}")(c4)
            pooled = (c4 * attention).sum(-1).sum(-1) / (attention.sum(-1).sum(-1) + 1e-8)
            values[f"pd_mano_para_{side}"] = getattr(init_regressor, f"mano_{side}")(pooled)
    return values


def summary(name: str, out: dict[str, np.ndarray]) -> None:
    for i in range(3):
        uv = np.concatenate([out[f"s{i}_{s}_joint_uv"] for s in SIDES])
        muv = np.concatenate([out[f"s{i}_{s}_mesh_uv"] for s in SIDES])
        line = f"{name} s{i}: joint uv [{uv.min():.3f}, {uv.max():.3f}]"
        line += f" mesh uv [{muv.min():.3f}, {muv.max():.3f}]"
        line += " proj " + " ".join(str(np.round(out[f"s{i}_{s}_proj"], 3)) for s in SIDES)
        if i > 0:
            for s in SIDES:
                mask = out[f"s{i}_{s}_bone_mask"]
                line += f" {s} mask on {mask.any(0).mean():.3f}"
        print(line)
    for k in ("seg", "dense", "proj_feat", "s1_img_feat", "s2_img_feat", "backbone_c4_mean"):
        print(f"  {k}: |max| {np.abs(out[k]).max():.3g} std {out[k].std():.3g}")


def main(release: Path, latest: Path) -> None:
    official_dir.cpu_only()
    results = {}
    for name, repo in (("release", release), ("latest", latest)):
        out, state = run(repo)
        results[name] = (out, {k: list(v.shape) for k, v in state.items()})
        summary(name, out)
        path = OUT / f"dir_reference_{name}.npz"
        np.savez_compressed(path, **out)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {len(out)} arrays)")
    assert results["release"][1] == results["latest"][1], "the two commits' state dicts differ"
    latest_out, latest_shapes = results["latest"]
    write_keys(latest_shapes)
    print(f"wrote {KEYS} ({len(latest_shapes)} keys)")
    release_out = results["release"][0]
    for k in latest_out:
        if not np.array_equal(latest_out[k], release_out[k]):
            print(f"  release != latest: {k}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
