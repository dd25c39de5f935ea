"""The DIR network (Ren et al., ICCV 2023): a 256x256 crop holding both hands -> both hands.

ResNet-50 encoder; an initial regression with one spatial attention per hand (64 parameters per
hand and the offset between the hands' roots); a decoder with two refinement stages, at 16x16
and 32x32: each samples per-joint image features at the current 2D joints, adds position
embeddings, runs a per-joint-weight graph convolution over each hand's 21-joint skeleton and a
transformer over both hands' 42 joints, re-predicts the parameters and offset, and projects the
joint features back onto the image along the predicted bones; segmentation and dense heads on
the final 32x32 map. ``DIR.forward`` returns every stage's outputs by name (``DIROutput``).

Module and parameter names follow the official tree (``backbone``, ``init_regressor``,
``decoder.projecter_4`` ...), so an official checkpoint maps onto this network key for key; what
the official file holds besides (its copies of the MANO buffers, the ImageNet classifier, the
loss's class weights, the pixel grids) is handled by ``dir.checkpoint``.

Input: RGB scaled to [0, 1] and normalised with ImageNet's mean and std (``dir.crop``). No
downloads, no device moves, no ``no_grad`` inside: the module trains, runs on CPU and CUDA, in
batches, under autocast (the hand layer stays in float32), with channels_last.

Two behaviours of the official code depend on its history (``DIRConfig.behaviour``):

- ``"release"`` (default): the code the released checkpoint was trained with (commit 329e381):
  the first refinement stage's right-hand regressor is given the *left* hand's initial
  parameters (fixed upstream in 5af5ee0, after the release), and the transformer's first block
  is built but never run (its loop starts at 1).
- ``"latest"``: the official code of today: the right hand gets its own initial parameters; the
  first transformer block is still skipped.
- ``"corrected"``: both fixed: own parameters and all four transformer blocks (for training
  new weights; the released ones were not trained this way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from handmocap.core.backbones.resnet import ResNet
from handmocap.core.dir.hands import OFFSET_UNIT, PARAMS, SIDES, DIRHands, PosedHands
from handmocap.core.handdata import HandModelData

BEHAVIOURS = ("release", "latest", "corrected")
JOINTS = 21
# The 20 bones of the 21-keypoint skeleton (project order): parent and child keypoints.
BONE_PARENTS = (0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)
BONE_CHILDREN = tuple(range(1, 21))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DIRConfig:
    """What defines a DIR network. The defaults are the released checkpoint's."""

    root_joint: int = 0  # keypoint at the origin of each hand: 0 wrist (release), 9 middle knuckle
    behaviour: str = "release"  # see the module docstring
    input_size: int = 256
    resnet_layers: tuple[int, ...] = (3, 4, 6, 3)  # ResNet-50
    resnet_width: int = 64  # bottleneck width of the first stage (doubling per stage)
    decoder_dim: int = 256  # the decoder's image features
    embed_dim: int = 128  # joint features in the graph and the transformer
    joint_dim: int = 64  # joint features after the transformer

    @classmethod
    def tiny(cls, **changes) -> DIRConfig:
        """A small network of the same structure, for tests."""
        sizes = dict(resnet_layers=(1, 1, 1, 1), resnet_width=8, decoder_dim=32, embed_dim=16,
                     joint_dim=8)  # fmt: skip
        return cls(**{**sizes, **changes})

    def __post_init__(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {', '.join(BEHAVIOURS)}")
        if self.input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {self.input_size}")


@dataclass
class DIRStage:
    """One stage's hands: per side, the 64 parameters and the posed hand; the roots' offset."""

    params: dict[str, torch.Tensor]  # side -> (B, 64)
    hands: dict[str, PosedHands]
    offset: torch.Tensor  # (B, 3) right root minus left root, in units of 0.15 m
    features: dict[str, torch.Tensor] = field(default_factory=dict)  # refinement stages' maps

    @property
    def offset_metres(self) -> torch.Tensor:
        return self.offset * OFFSET_UNIT


@dataclass
class DIROutput:
    stages: dict[str, DIRStage]  # "init", "stage1" (16x16), "stage2" (32x32, the answer)
    seg: torch.Tensor  # (B, 3, 32, 32) logits: background, left, right
    dense: torch.Tensor  # (B, 3, 32, 32) dense (vertex colour) map
    proj_feat: torch.Tensor  # (B, 1280, 32, 32) both hands' bone features, summed

    @property
    def final(self) -> DIRStage:
        return self.stages["stage2"]


def _mlp1d(cin: int, cout: int) -> nn.Sequential:
    """Conv1d 1x1, BatchNorm, ReLU, Conv1d 1x1 (indices 0, 1, 3 carry the weights)."""
    return nn.Sequential(
        nn.Conv1d(cin, cout, 1), nn.BatchNorm1d(cout), nn.ReLU(), nn.Conv1d(cout, cout, 1)
    )


def _head2d(cin: int, mid: int, cout: int, kernel: int = 3, bias: bool = True) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, mid, kernel, 1, kernel // 2, bias=bias),
        nn.BatchNorm2d(mid),
        nn.ReLU(),
        nn.Conv2d(mid, cout, 1),
    )


def _init_like_official(module: nn.Module) -> None:
    """The official initialisation: conv N(0, sqrt(2 / (k*k*out))), BN (1, 0), linear
    N(0, 0.001)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            m.weight.data.normal_(0, math.sqrt(2.0 / n))
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.data.fill_(1)
            m.bias.data.zero_()
        elif isinstance(m, nn.Linear):
            m.weight.data.normal_(0, 0.001)


class _Conv(nn.Module):
    """A convolution with bias behind a ``conv`` attribute (the official hourglass naming)."""

    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, 1, (kernel - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Residual(nn.Module):
    """Pre-activation bottleneck (BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1) plus a 1x1 skip."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cout // 2
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), _Conv(cin, mid, 1)
        self.bn2, self.conv2 = nn.BatchNorm2d(mid), _Conv(mid, mid, 3)
        self.bn3, self.conv3 = nn.BatchNorm2d(mid), _Conv(mid, cout, 1)
        self.skip_layer = _Conv(cin, cout, 1)  # built even when unused, as officially
        self.need_skip = cin != cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.skip_layer(x) if self.need_skip else x
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + residual


def skeleton_adjacency(joints: int = JOINTS) -> torch.Tensor:
    """(21, 21) symmetric 0/1 adjacency of the hand skeleton's 20 bones, no self loops."""
    adj = torch.zeros(joints, joints, device="cpu")  # a constant, also when built on "meta"
    for a, b in zip(BONE_PARENTS, BONE_CHILDREN, strict=True):
        adj[a, b] = adj[b, a] = 1.0
    return adj


class PGraphConv(nn.Module):
    """Graph convolution with a weight matrix per joint (SemGCN-style, as DIR uses it).

    ``out_j = sum_k A0[j,k] x_k W0[k] + sum_k A1[j,k] x_k W1[k] + bias``: ``A0`` is the identity
    (a softmax over the single self entry, learnable logits ``e_0``), ``A1`` a row-softmax of
    learnable logits ``e_1`` over each joint's skeleton neighbours (zero elsewhere). Each joint
    k's features go through its own matrix ``W[., k]`` before being mixed.
    """

    def __init__(self, cin: int, cout: int, adjacency: torch.Tensor):
        super().__init__()
        n = adjacency.shape[0]
        self.W = nn.Parameter(torch.empty(2, n, cin, cout))
        nn.init.xavier_uniform_(self.W, gain=1.414)
        self.register_buffer("self_mask", torch.eye(n, dtype=torch.bool), persistent=False)
        self.register_buffer("neighbour_mask", adjacency > 0, persistent=False)
        self.e_0 = nn.Parameter(torch.ones(1, n))
        self.e_1 = nn.Parameter(torch.ones(1, int(self.neighbour_mask.sum())))
        bound = 1.0 / math.sqrt(n)  # the official bound (from W.size(1), the joint count)
        self.bias = nn.Parameter(torch.empty(cout).uniform_(-bound, bound))

    def mixing(self, mask: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Row-softmax of ``logits`` placed at ``mask``'s entries (row-major), zero elsewhere."""
        full = torch.full(mask.shape, -9e15, dtype=logits.dtype, device=logits.device)
        full = full.masked_scatter(mask, logits.reshape(-1))
        return torch.softmax(full, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, J, C_in) -> (B, J, C_out)."""
        h = torch.einsum("bjc,sjcd->sbjd", x, self.W.to(x.dtype))
        a0 = self.mixing(self.self_mask, self.e_0).to(x.dtype)
        a1 = self.mixing(self.neighbour_mask, self.e_1).to(x.dtype)
        return a0 @ h[0] + a1 @ h[1] + self.bias.to(x.dtype)


class _GraphLayer(nn.Module):
    def __init__(self, channels: int, adjacency: torch.Tensor):
        super().__init__()
        self.gconv = PGraphConv(channels, channels, adjacency)
        self.bn = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.gconv(x).transpose(1, 2)).transpose(1, 2))


class HandGraph(nn.Module):
    """Four graph-convolution layers with BatchNorm and ReLU (no residual, despite the official
    class name ``ResSimplePGCN``)."""

    def __init__(self, channels: int, layers: int = 4):
        super().__init__()
        adjacency = skeleton_adjacency()
        self.gconv_layers = nn.Sequential(
            *(_GraphLayer(channels, adjacency) for _ in range(layers))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gconv_layers(x)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # scale (c / heads) ** -0.5, as officially
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _Block(nn.Module):
    """Pre-norm transformer block (LayerNorm eps 1e-6, GELU MLP of twice the width)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TwoHandTransformer(nn.Module):
    """Attention over both hands' 42 joints (the official ``STE``): learned joint embedding,
    blocks each followed by the shared ``spatial_norm``, then LayerNorm + Linear to ``out_dim``.

    ``first_block``: whether block 0 runs; the official loop starts at 1, so the released
    weights' block 0 was never trained (kept so that checkpoints load key for key).
    """

    def __init__(self, tokens: int, dim: int, out_dim: int, depth: int = 4, heads: int = 4,
                 mlp_ratio: float = 2.0, first_block: bool = False):  # fmt: skip
        super().__init__()
        self.spatial_pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        self.STEblocks = nn.ModuleList(_Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.spatial_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, out_dim))
        self.first_block = first_block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.spatial_pos_embed
        for block in self.STEblocks[0 if self.first_block else 1 :]:
            x = self.spatial_norm(block(x))
        return self.head(x)


class InitRegressor(nn.Module):
    """On the encoder's last map: per hand, an attention-weighted mean of the features -> 64
    parameters; from the plain mean -> the roots' offset."""

    def __init__(self, channels: int = 2048):
        super().__init__()
        for side in SIDES:
            attention = nn.Sequential(
                nn.Conv2d(channels, channels // 2, 3, 1, 1),
                nn.BatchNorm2d(channels // 2),
                nn.ReLU(),
                nn.Conv2d(channels // 2, 1, 1, 1),
                nn.Sigmoid(),
            )
            setattr(self, f"attention_{side}", attention)
            setattr(self, f"mano_{side}", nn.Linear(channels, PARAMS))
        self.offset = nn.Linear(channels, 3)
        _init_like_official(self)

    def forward(self, feat: torch.Tensor, hands: DIRHands) -> DIRStage:
        params = {}
        for side in SIDES:
            attention = getattr(self, f"attention_{side}")(feat)
            pooled = (feat * attention).sum((-1, -2)) / (attention.sum((-1, -2)) + 1e-8)
            params[side] = getattr(self, f"mano_{side}")(pooled)
        offset = self.offset(feat.mean((-1, -2)))
        return DIRStage(params, {s: hands(s, params[s]) for s in SIDES}, offset)


class RegressorOffset(nn.Module):
    """Re-predicts (not residually) each hand's 64 parameters from its 21 joint features and its
    previous parameters, and the offset from both hands' features and the previous offset."""

    def __init__(self, joint_features: int):
        super().__init__()
        self.mano_left = nn.Linear(joint_features + PARAMS, PARAMS)
        self.mano_right = nn.Linear(joint_features + PARAMS, PARAMS)
        self.offset = nn.Linear(joint_features * 2 + 3, 3)  # initialised by the decoder

    def forward(self, feats: dict[str, torch.Tensor], previous: dict[str, torch.Tensor],
                offset: torch.Tensor, hands: DIRHands) -> DIRStage:  # fmt: skip
        flat = {s: feats[s].flatten(1) for s in SIDES}
        new_offset = self.offset(torch.cat([flat["left"], flat["right"], offset], -1))
        params = {
            s: getattr(self, f"mano_{s}")(torch.cat([flat[s], previous[s]], -1)) for s in SIDES
        }
        return DIRStage(params, {s: hands(s, params[s]) for s in SIDES}, new_offset)


def pixel_centres(size: int) -> torch.Tensor:
    """(size * size, 2) the (x, y) centres of a size x size map's pixels, row-major."""
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([x, y], -1).reshape(-1, 2)


def bone_projection(
    joints_uv: torch.Tensor, joint_feat: torch.Tensor, centres: torch.Tensor, size: int,
    distance: float,
) -> torch.Tensor:  # fmt: skip
    """Paint joint features along the 2D bones: (B, 21, 2) uv in [-1, 1], (B, 21, C) features
    -> (B, 20 * C, S, S), channel ``bone * C + c``.

    A pixel centre ``p`` closer than ``distance`` (map pixels) to bone ``a -> b`` gets
    ``w_a f_a + w_b f_b`` with ``w_a = |p - b| / (|p - a| + |p - b|)`` (and ``w_b`` alike), else
    zero. A zero-length bone paints nothing (the official code reaches the same through NaN).
    """
    b, _, c = joint_feat.shape
    uv = (joints_uv.float() + 1) / 2 * size
    parents, children = list(BONE_PARENTS), list(BONE_CHILDREN)
    a, e = uv[:, parents][:, None], uv[:, children][:, None]  # (B, 1, 20, 2)
    p = centres[None, :, None, :]  # (1, S*S, 1, 2)
    along = e - a
    length = torch.linalg.vector_norm(along, dim=-1, keepdim=True)
    direction = along / length.clamp_min(1e-12)
    before = ((a - p) * direction).sum(-1)
    after = ((p - e) * direction).sum(-1)
    beyond = torch.clamp(torch.maximum(before, after), min=0)
    rel = p - a
    across = rel[..., 0] * direction[..., 1] - rel[..., 1] * direction[..., 0]
    mask = (torch.hypot(beyond, across) < distance) & (length[..., 0] > 0)  # (B, S*S, 20)
    shape = (b, size * size, len(parents), 2)
    to_a = F.pairwise_distance(p.expand(shape), a.expand(shape))  # eps as the official code
    to_b = F.pairwise_distance(p.expand(shape), e.expand(shape))
    weight_a = 1 - to_a / (to_a + to_b)
    weight_b = 1 - to_b / (to_a + to_b)
    feat_a, feat_b = joint_feat[:, None, parents], joint_feat[:, None, children]  # (B,1,20,C)
    painted = feat_a * weight_a[..., None].to(feat_a) + feat_b * weight_b[..., None].to(feat_b)
    painted = painted * mask[..., None].to(painted)
    return painted.reshape(b, size, size, -1).permute(0, 3, 1, 2)


class Joint2BoneFeature(nn.Module):
    """One refinement stage: image features -> joint features -> new hands -> bone features."""

    def __init__(self, img_dim: int, emb_dim: int, joint_dim: int, size: int, distance: float,
                 first_block: bool):  # fmt: skip
        super().__init__()
        self.size, self.distance = size, distance
        for side in SIDES:
            setattr(self, f"gcn_{side}", HandGraph(emb_dim))
            img2joint = nn.Module()
            img2joint.filters = _mlp1d(img_dim, emb_dim)
            setattr(self, f"img2joint_{side}", img2joint)
            setattr(self, f"pos_emb_{side}", _mlp1d(3, emb_dim))
        self.global_pos_emb = _mlp1d(3, emb_dim)
        self.interaction = TwoHandTransformer(
            2 * JOINTS, emb_dim, joint_dim, first_block=first_block
        )
        self.proj_feat_emb = _mlp1d(joint_dim, joint_dim)
        self.fusion = _head2d(joint_dim * len(BONE_PARENTS) * 2, img_dim, img_dim)
        self.regressor = RegressorOffset(JOINTS * joint_dim)
        self.register_buffer("img_gird", pixel_centres(size), persistent=False)
        # initialised with the rest of the decoder (``Decoder``)

    def sample(self, side: str, img_feat: torch.Tensor, joints_uv: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S), (B, 21, 2) -> (B, 21, emb) features at the joints (bilinear, zeros)."""
        grid = joints_uv[:, None].to(img_feat.dtype)
        sampled = F.grid_sample(img_feat, grid, align_corners=False)[:, :, 0]  # (B, C, 21)
        return getattr(self, f"img2joint_{side}").filters(sampled).transpose(1, 2)

    def forward(self, img_feat: torch.Tensor, stage: DIRStage, previous: dict[str, torch.Tensor],
                hands: DIRHands) -> DIRStage:  # fmt: skip
        """Refine ``stage`` (its joints, uv and offset; ``previous``: the parameters the
        regressor starts from) on the image features ``img_feat``: the new stage, its
        ``features`` holding the fused bone map (``img_feat``) and both hands' painted bones."""
        offset = stage.offset.detach()[:, None]  # (B, 1, 3)
        feats = {}
        for sign, side in ((-1, "left"), (1, "right")):
            joints = stage.hands[side].joints.detach() / OFFSET_UNIT
            uv = stage.hands[side].joints_uv.detach()
            local = getattr(self, f"pos_emb_{side}")(joints.transpose(1, 2)).transpose(1, 2)
            feat = self.sample(side, img_feat, uv) + local.to(img_feat.dtype)
            feat = getattr(self, f"gcn_{side}")(feat)
            shared = (joints + sign * offset / 2).transpose(1, 2)
            feats[side] = feat + self.global_pos_emb(shared).transpose(1, 2)
        both = self.interaction(torch.cat([feats["left"], feats["right"]], 1))
        feats = dict(zip(SIDES, torch.split(both, JOINTS, 1), strict=True))
        previous = {s: p.detach() for s, p in previous.items()}
        new = self.regressor(feats, previous, offset[:, 0], hands)
        painted = []
        for side in SIDES:
            joint_feat = self.proj_feat_emb(feats[side].transpose(1, 2)).transpose(1, 2)
            painted.append(
                bone_projection(new.hands[side].joints_uv, joint_feat, self.img_gird, self.size,
                                self.distance)
            )  # fmt: skip
        new.features = {
            "img_feat": self.fusion(torch.cat(painted, 1).to(img_feat.dtype)),
            "vis_img_feat": painted[0] + painted[1],
        }
        return new


class Decoder(nn.Module):
    """The two refinement stages (16x16 on c3, 32x32 on c2) and the heads on the final map."""

    def __init__(self, config: DIRConfig, in_dims: tuple[int, ...]):
        super().__init__()
        dim, emb, joint = config.decoder_dim, config.embed_dim, config.joint_dim
        first_block = config.behaviour == "corrected"
        size = config.input_size // 16  # the first stage's map (c3's, doubled again for c2)
        self.skip_layer4 = Residual(in_dims[2], dim)
        self.fusion_layer4 = Residual(in_dims[3] + dim, dim)
        self.projecter_4 = Joint2BoneFeature(dim, emb, joint, size, 1.0, first_block)
        self.enhance_layer4 = Residual(dim * 2, dim)
        self.skip_layer3 = Residual(in_dims[1], dim)
        self.fusion_layer3 = Residual(dim * 2, dim)
        self.projecter_3 = Joint2BoneFeature(dim, emb, joint, size * 2, 2.0, first_block)
        self.enhance_layer3 = Residual(dim * 2, dim)
        self.conv_final = _head2d(dim, dim, dim, bias=False)
        self.seg = _head2d(dim, dim // 2, 3)
        self.dense = _head2d(dim, dim // 2, 3)
        _init_like_official(self)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class DIR(nn.Module):
    """The whole network; ``forward(images) -> DIROutput``."""

    def __init__(self, config: DIRConfig, models: dict[str, HandModelData]):
        super().__init__()
        self.config = config
        widths = tuple(config.resnet_width * 2**i for i in range(4))
        self.backbone = ResNet(config.resnet_layers, widths, include_top=False)
        channels = self.backbone.feature_channels
        self.init_regressor = InitRegressor(channels[3])
        self.decoder = Decoder(config, channels)
        self.hands = DIRHands(models, config.root_joint)  # buffers only, not in the state dict

    @classmethod
    def from_models_dir(cls, config: DIRConfig | None = None, models_dir=None, kind="auto") -> DIR:
        from handmocap.core.handdata import load_hand_models

        return cls(config or DIRConfig(), load_hand_models(models_dir, kind))

    def forward(self, images: torch.Tensor) -> DIROutput:
        """(B, 3, S, S) ImageNet-normalised RGB crops -> every stage's hands, seg and dense."""
        _, c2, c3, c4 = self.backbone.forward_features(images)
        init = self.init_regressor(c4, self.hands)
        d = self.decoder
        fused = d.fusion_layer4(torch.cat([_up(c4), d.skip_layer4(c3)], 1))
        previous = dict(init.params)
        if self.config.behaviour == "release":
            previous["right"] = init.params["left"]  # the released code's quirk, see the docstring
        stage1 = d.projecter_4(fused, init, previous, self.hands)
        enhanced = d.enhance_layer4(torch.cat([fused, stage1.features["img_feat"]], 1))
        fused = d.fusion_layer3(torch.cat([_up(enhanced), d.skip_layer3(c2)], 1))
        stage2 = d.projecter_3(fused, stage1, stage1.params, self.hands)
        enhanced = d.enhance_layer3(torch.cat([fused, stage2.features["img_feat"]], 1))
        final = d.conv_final(enhanced)
        return DIROutput(
            stages={"init": init, "stage1": stage1, "stage2": stage2},
            seg=d.seg(final),
            dense=d.dense(final),
            proj_feat=stage2.features["vis_img_feat"],
        )
