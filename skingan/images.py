"""Pixel-range conversion and PNG writing, the one place images leave the models.

Models work in float NHWC: SL-StyleGAN in [0, 1] (sigmoid), DCGAN in [-1, 1] (tanh).
"""

import numpy as np
from PIL import Image

from skingan.fileio import atomic_path


def to_uint8(images, value_range):
    """Float images (B, H, W, 3) in value_range -> uint8 (B, H, W, 3) in [0, 255]."""
    low, high = value_range
    images = (np.asarray(images, dtype=np.float32) - low) / (high - low)
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)


def make_grid(images, rows, cols, pad=2):
    """uint8 (rows * cols, H, W, 3) -> one uint8 image, images row by row with a gap of pad."""
    n, h, w, c = images.shape
    if n != rows * cols:
        raise ValueError(f"grid of {rows}x{cols} needs {rows * cols} images, got {n}")
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        grid[y:y + h, x:x + w] = images[i]
    return grid


def save_png(image, path):
    """Write a uint8 (H, W, 3) array; write to a temporary name first so a crash never
    leaves a truncated PNG behind."""
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp)


def minmax_to_uint8(images):
    """Each float image (B, H, W, 3) stretched to its own full range, then to uint8: the
    source projects' export (torchvision's save_image(normalize=True) per image, OpenCV's
    per-image NORM_MINMAX). A flat image becomes black, as torchvision makes it."""
    x = np.asarray(images, dtype=np.float32)
    low = x.min(axis=(1, 2, 3), keepdims=True)
    high = x.max(axis=(1, 2, 3), keepdims=True)
    x = (x - low) / np.maximum(high - low, 1e-5)
    return np.clip(np.floor(x * 255.0 + 0.5), 0, 255).astype(np.uint8)
