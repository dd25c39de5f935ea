"""ACR's input: white square padding, bicubic resize, [-1, 1] scaling, and the way back."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from handmocap.core.acr.preprocess import (
    Letterbox,
    letterbox,
    preprocess,
    square_paddings,
    to_network_input,
)

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
MAGIC = REALDATA / "acr_demo" / "magic.jpg"
GREY = 128


def grey_frame(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), GREY, np.uint8)


@pytest.mark.parametrize(
    "height, width, expected",
    [
        (100, 60, (0, 20, 0, 20)),  # portrait: left and right
        (60, 100, (20, 0, 20, 0)),  # landscape: top and bottom
        (100, 61, (0, 20, 0, 19)),  # odd difference: floor before (left), ceil after (right)
        (61, 100, (19, 0, 20, 0)),  # floor before (top), ceil after (bottom)
        (1080, 1920, (420, 0, 420, 0)),
        (77, 77, (0, 0, 0, 0)),
    ],
)
def test_square_paddings(height, width, expected):
    top, right, bottom, left = square_paddings(height, width)
    assert (top, right, bottom, left) == expected
    assert height + top + bottom == width + left + right == max(height, width)


@pytest.mark.parametrize("height, width", [(300, 500), (401, 250), (64, 64)])
@pytest.mark.parametrize("input_size", [512, 256])
def test_letterbox_pads_with_white_to_the_input_size(height, width, input_size):
    image, box = letterbox(grey_frame(height, width), input_size)
    assert image.shape == (input_size, input_size, 3) and image.dtype == np.uint8
    top, right, bottom, left = square_paddings(height, width)
    assert (box.height, box.width, box.pad_top, box.pad_left) == (height, width, top, left)
    assert box.size == max(height, width) and box.input_size == input_size
    assert box.scale == pytest.approx(input_size / max(height, width))
    # away from the frame's border (bicubic blends a few pixels there): white, then the frame
    s, margin = box.scale, 3
    y0, y1 = round(top * s), round((top + height) * s)
    x0, x1 = round(left * s), round((left + width) * s)
    assert np.all(image[: max(y0 - margin, 0)] == 255) and np.all(image[y1 + margin :] == 255)
    assert np.all(image[:, : max(x0 - margin, 0)] == 255)
    assert np.all(image[:, x1 + margin :] == 255)
    assert np.all(image[y0 + margin : y1 - margin, x0 + margin : x1 - margin] == GREY)
    if top or left:
        assert (image == 255).any()  # there is padding at all


def dot_frame(height: int, width: int, yx: tuple[int, int], radius: int) -> np.ndarray:
    frame = grey_frame(height, width)
    y, x = yx
    frame[y - radius : y + radius + 1, x - radius : x + radius + 1] = (255, 0, 0)
    return frame


@pytest.mark.parametrize(
    "height, width, yx, radius",
    [
        (300, 500, (220, 70), 2),  # landscape, downscaled
        (401, 250, (30, 200), 2),  # portrait, odd difference
        (61, 100, (50, 90), 1),  # upscaled 5x
        (1080, 1920, (900, 1500), 6),  # the demo's frame size
    ],
)
def test_from_normalized_finds_a_dot_back(height, width, yx, radius):
    image, box = letterbox(dot_frame(height, width, yx, radius))
    red = (image[..., 0].astype(int) - image[..., 1].astype(int)) > 100
    assert red.any()
    weights = red.astype(float)
    rows, cols = np.indices(red.shape)
    # pixel i covers [i, i + 1): its centre is i + 0.5; normalised -1..1 spans the input's edges
    centre = np.array([(cols * weights).sum(), (rows * weights).sum()]) / weights.sum() + 0.5
    normalized = centre / box.input_size * 2 - 1
    back = box.from_normalized(normalized)
    expected = np.array([yx[1], yx[0]]) + 0.5  # x, y of the dot's centre, continuous
    np.testing.assert_allclose(back, expected, atol=max(0.5, 0.5 / box.scale))


@pytest.mark.parametrize("height, width", [(300, 500), (401, 250), (100, 61), (64, 64)])
def test_corners_centre_and_principal_point(height, width):
    _, box = letterbox(grey_frame(height, width))
    top, _, _, left = square_paddings(height, width)
    size = max(height, width)
    corners = box.from_normalized(np.array([[-1.0, -1.0], [1.0, 1.0]]))
    np.testing.assert_allclose(corners[0], [-left, -top])
    np.testing.assert_allclose(corners[1], [size - left, size - top])
    # the frame's own corners sit at the padding's share of the square
    frame_corners = np.array(
        [[2 * left / size - 1, 2 * top / size - 1],
         [2 * (left + width) / size - 1, 2 * (top + height) / size - 1]]
    )  # fmt: skip
    np.testing.assert_allclose(box.from_normalized(frame_corners), [[0, 0], [width, height]])
    centre = box.from_normalized(np.zeros(2))
    np.testing.assert_allclose(box.principal_point(), centre)
    np.testing.assert_allclose(box.principal_point(), [width / 2, height / 2], atol=0.5)
    # batched points keep their shape
    assert box.from_normalized(np.zeros((4, 21, 2))).shape == (4, 21, 2)


def test_letterbox_of_the_demo_frame():
    if not MAGIC.is_file():
        pytest.skip(f"real data not available: {MAGIC} (the shared realdata folder is absent)")
    frame = cv2.cvtColor(cv2.imread(str(MAGIC)), cv2.COLOR_BGR2RGB)
    assert frame.shape == (1080, 1920, 3)
    image, box = letterbox(frame)
    assert image.shape == (512, 512, 3)
    assert box == Letterbox(1080, 1920, 420, 0, 1920, 512)
    # 420 padded rows above and below become 112 input rows each: white away from the edge
    assert np.all(image[:109] == 255) and np.all(image[403:] == 255)
    # inside, the same as resizing the frame alone (same scale and pixel grid: 3.75 px per px)
    direct = cv2.resize(frame, (512, 288), interpolation=cv2.INTER_CUBIC)
    inner = image[112 + 3 : 400 - 3].astype(int) - direct[3:-3].astype(int)
    assert np.abs(inner).max() <= 1
    assert not np.all(image[112:400] == 255)
    # and RGB order is kept: the frame's mean colour survives the resize
    np.testing.assert_allclose(
        image[112:400].reshape(-1, 3).mean(0), frame.reshape(-1, 3).mean(0), atol=2
    )
    np.testing.assert_allclose(box.principal_point(), [960, 540])


def test_preprocess_batches_frames_of_any_size():
    frames = [dot_frame(300, 500, (220, 70), 2), grey_frame(401, 250), grey_frame(64, 64)]
    images, boxes = preprocess(frames, 256)
    assert isinstance(images, torch.Tensor)
    assert images.shape == (3, 256, 256, 3) and images.dtype == torch.uint8
    for frame, image, box in zip(frames, images, boxes, strict=True):
        expected, expected_box = letterbox(frame, 256)
        np.testing.assert_array_equal(image.numpy(), expected)
        assert box == expected_box


def test_to_network_input():
    images = torch.zeros(2, 4, 4, 3, dtype=torch.uint8)
    images[0, ..., 0] = 255  # image 0: red
    images[1, 1, 2] = torch.tensor([0, 128, 255], dtype=torch.uint8)
    x = to_network_input(images)
    assert x.shape == (2, 3, 4, 4) and x.dtype == torch.float32
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    assert torch.all(x[0, 0] == 1) and torch.all(x[0, 1:] == -1)
    torch.testing.assert_close(x[1, :, 1, 2], torch.tensor([-1.0, 128 / 255 * 2 - 1, 1.0]))
    assert torch.all(x[1, :, 0, 0] == -1)
    assert to_network_input(images, torch.float64).dtype == torch.float64


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((20, 30), np.uint8),  # grayscale
        np.zeros((20, 30, 1), np.uint8),
        np.zeros((20, 30, 4), np.uint8),  # RGBA
        np.zeros((20, 30, 3), np.float32),  # float image
        np.zeros((20, 30, 3), np.uint16),
    ],
    ids=["gray", "gray1", "rgba", "float", "uint16"],
)
def test_bad_input_is_refused(frame):
    with pytest.raises(ValueError, match="RGB uint8"):
        letterbox(frame)
    with pytest.raises(ValueError, match="RGB uint8"):
        preprocess([grey_frame(10, 10), frame])
