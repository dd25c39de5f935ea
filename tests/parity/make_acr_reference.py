"""Write tests/data/acr_reference.npz: the official ACR network's outputs on a real image.

    python tests/parity/make_acr_reference.py OFFICIAL_REPO_CHECKOUT

Builds the official network from a checkout of ZhengdiYu/Arbitrary-Hands-3D-Reconstruction
(never copied into handmocap), fills it with the deterministic weights of ``deterministic.py``,
runs its backbone, heads and result parser on CPU in fp32 on the ACR demo image (padded and
resized by handmocap's ``letterbox``), and saves the maps (subsampled where large) and the
parsed hands. ``tests/core/test_acr_parity.py`` runs the port on the same input and weights.
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
import official_acr  # noqa: E402

from handmocap.core.acr.preprocess import letterbox  # noqa: E402

IMAGE = HERE.parents[2] / "shared" / "realdata" / "acr_demo" / "magic.jpg"
OUT = HERE.parent / "data" / "acr_reference.npz"
KEYS = HERE.parent / "data" / "acr_official_keys.json"
STEP = 4  # subsampling of the large maps


def synthetic_maps() -> dict[str, torch.Tensor]:
    """Random maps with both hands' centres close together, so the cross prior applies.

    ``tests/core/test_acr_parity.py`` builds the same maps with the same generator.
    """
    g = torch.Generator().manual_seed(7)
    maps = {
        "l_params_maps": torch.randn(1, 109, 64, 64, generator=g),
        "r_params_maps": torch.randn(1, 109, 64, 64, generator=g),
        "l_prior_maps": torch.randn(1, 106, 64, 64, generator=g),
        "r_prior_maps": torch.randn(1, 106, 64, 64, generator=g),
        "l_center_map": 0.3 * torch.rand(1, 1, 64, 64, generator=g),
        "r_center_map": 0.3 * torch.rand(1, 1, 64, 64, generator=g),
    }
    maps["l_center_map"][0, 0, 20, 22] = 0.9
    maps["r_center_map"][0, 0, 27, 35] = 0.8
    return maps


def main(repo: Path) -> None:
    official_acr.cpu_only()
    module = official_acr.load_official(repo)
    torch.manual_seed(0)
    net = module.ACR().eval()
    state = net.state_dict()
    shapes = {f"module.{k}": list(v.shape) for k, v in state.items()}
    lines = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in shapes.items())
    KEYS.write_text("{\n" + lines + "\n}\n")
    net.load_state_dict(deterministic.fill(state))
    frame = cv2.cvtColor(cv2.imread(str(IMAGE)), cv2.COLOR_BGR2RGB)
    image, _ = letterbox(frame, 512)
    batch = torch.from_numpy(image)[None]
    with torch.no_grad():
        features = net.backbone(batch)
        maps = net.head_forward(features)
        # the maps before fusion: recompute the official global forward on the same features
        coords = net.coordmaps.repeat(1, 1, 1, 1)
        x = torch.cat([features, coords], 1)
        l_global, r_global, _, _, _, _ = net.global_forward(x)
        meta = {"batch_ids": torch.tensor([0]), "image": batch, "offsets": torch.zeros(1, 10)}
        parsed, _ = net._result_parser.parse(dict(maps), meta, {})
    d = parsed["params_dict"]
    synthetic = synthetic_maps()
    with torch.no_grad():
        meta = {"batch_ids": torch.tensor([0]), "image": batch, "offsets": torch.zeros(1, 10)}
        close, _ = net._result_parser.parse(dict(synthetic), meta, {})
    s = STEP
    out = {
        "image": image,
        "segm_logits": maps["segms"][0, :, ::s, ::s].numpy(),
        "segm_logits_mean": maps["segms"][0].mean((1, 2)).numpy(),
        "left_center": maps["l_center_map"][0].numpy(),
        "right_center": maps["r_center_map"][0].numpy(),
        "left_params": maps["l_params_maps"][0, :, ::s, ::s].numpy(),
        "right_params": maps["r_params_maps"][0, :, ::s, ::s].numpy(),
        "left_params_global": l_global[0, :, ::s, ::s].numpy(),
        "right_params_global": r_global[0, :, ::s, ::s].numpy(),
        "left_prior": maps["l_prior_maps"][0, :, ::s, ::s].numpy(),
        "right_prior": maps["r_prior_maps"][0, :, ::s, ::s].numpy(),
        "detection_flag": parsed["detection_flag"].numpy(),
        "params_pred": parsed["params_pred"].numpy(),  # left rows first, then right
        "left_center_xy": parsed["l_centers_pred"].numpy(),
        "right_center_xy": parsed["r_centers_pred"].numpy(),
        "cam": d["cam"].numpy(),
        "global_orient": d["global_orient"].numpy(),
        "hand_pose": d["hand_pose"].numpy(),
        "betas": d["betas"].numpy(),
        "step": np.array(s),
        "synthetic_params_pred": close["params_pred"].numpy(),
        "synthetic_left_center_xy": close["l_centers_pred"].numpy(),
        "synthetic_right_center_xy": close["r_centers_pred"].numpy(),
        "synthetic_global_orient": close["params_dict"]["global_orient"].numpy(),
        "synthetic_hand_pose": close["params_dict"]["hand_pose"].numpy(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT}: detections {out['detection_flag']}, centers "
          f"L {out['left_center_xy']} R {out['right_center_xy']}")  # fmt: skip
    for k in ("left_center", "segm_logits", "left_params", "right_prior"):
        print(k, float(np.abs(out[k]).max()), float(out[k].max()))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
