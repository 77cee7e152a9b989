"""V1.2 image preprocessing: RGB, bicubic stretch to S x S (PIL), ToTensor, ImageNet normalize.

Written without torchvision (it does not import beside the CPU torch wheel); matches
`build_transform(is_train=False)` bit-for-bit because PIL does the resize in both.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAD_COLOR = tuple(int(x * 255) for x in IMAGENET_MEAN)  # (123, 116, 103)


def load_image(source: str | Path | bytes) -> Image.Image:
    """Open and fully decode an image so truncated files fail here, not later."""
    img = Image.open(io.BytesIO(source)) if isinstance(source, bytes | bytearray) else Image.open(source)
    img.load()
    return img


def pad_to_square(img: Image.Image, fill: tuple[int, int, int] = PAD_COLOR) -> Image.Image:
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    canvas = Image.new(img.mode, (side, side), fill)
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas


def image_to_tensor(img: Image.Image, size: int, pad2square: bool = False) -> torch.Tensor:
    """Return a float32 (3, size, size) tensor, as the original eval transform."""
    img = img.convert("RGB")
    if pad2square:
        img = pad_to_square(img)
    img = img.resize((size, size), Image.Resampling.BICUBIC)
    arr = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)
    return arr.sub_(mean).div_(std)
