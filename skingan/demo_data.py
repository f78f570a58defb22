"""Built-in demo data: synthetic dermoscopy-like images, so the tool runs without a download.

Each image is drawn with vectorised numpy from its own random stream (seed, index), so the
set is deterministic and image i does not depend on how many images are asked for:

- skin: a skin tone that varies per image, with smooth low-frequency blotches and fine grain;
- lesion: an irregular blob (a radius that wobbles with the angle, r(theta) = r0 * (1 +
  sum_k a_k cos(k theta + phi_k))), shaded light-brown at the rim to dark brown at the centre,
  with a pigment network (a perturbed sine mesh) and a few dark globules inside;
- optional hair strands (thin dark curves) and a dark circular vignette, as dermatoscopes give.

``ensure_demo_data()`` writes the set once (default ``Datasets/demo/``) and returns the folder;
it writes into a temporary sibling folder, puts a marker file in last and renames the folder
into place, so an interrupted write never leaves a half set that looks complete.

Command line: ``python demo_data.py --out DIR --n 300 --size 128``.
"""
import argparse
import json
import os
import shutil
import tempfile

import numpy as np
from PIL import Image

from skingan.errors import UserError, run_cli

MARKER = ".demo_complete.json"   # written last; its presence (with matching settings) = complete
GENERATOR_VERSION = 1            # bump when the drawing changes, so old sets are redrawn


def _smooth_noise(rng, height, width, cells):
    """Smooth random field in about [-1, 1]: a (cells x cells) grid of N(0,1), bilinearly
    upsampled to (height, width). Shape (height, width), float32."""
    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    y = np.linspace(0, cells, height, dtype=np.float32)
    x = np.linspace(0, cells, width, dtype=np.float32)
    y0 = np.minimum(y.astype(int), cells - 1)
    x0 = np.minimum(x.astype(int), cells - 1)
    fy = (y - y0)[:, None]
    fx = (x - x0)[None, :]
    g00 = grid[y0][:, x0]
    g01 = grid[y0][:, x0 + 1]
    g10 = grid[y0 + 1][:, x0]
    g11 = grid[y0 + 1][:, x0 + 1]
    return (g00 * (1 - fy) * (1 - fx) + g01 * (1 - fy) * fx
            + g10 * fy * (1 - fx) + g11 * fy * fx) / 1.5


def render_lesion(rng, height, width, hair=True, vignette=True):
    """One synthetic dermoscopy image as a (height, width, 3) uint8 array."""
    h, w = height, width
    s = min(h, w)
    # Pixel coordinates in units of the short side, centred: yy, xx in about [-0.5, 0.5].
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy = (yy - h / 2) / s
    xx = (xx - w / 2) / s

    # Skin: a per-image base tone (RGB in [0, 1]), blotches and grain.
    skin = np.array([0.85, 0.65, 0.57], np.float32) + rng.normal(0, 0.025, 3).astype(np.float32)
    skin = skin * (1.0 - 0.12 * rng.random())                       # darker skin types
    blotch = _smooth_noise(rng, h, w, 4)[..., None]                  # (h, w, 1)
    grain = rng.normal(0, 0.015, (h, w, 1)).astype(np.float32)
    img = skin * (1.0 + 0.06 * blotch) + grain                       # (h, w, 3)

    # Lesion outline: polar radius r(theta) around an off-centre point.
    cy, cx = rng.normal(0, 0.06, 2)
    r0 = rng.uniform(0.18, 0.32)
    dy, dx = yy - cy, xx - cx
    theta = np.arctan2(dy, dx)
    dist = np.sqrt(dy * dy + dx * dx)
    wobble = np.zeros_like(theta)
    for k in range(2, 7):
        wobble += rng.normal(0, 0.25 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    radius = r0 * (1.0 + wobble) * (1.0 + 0.15 * _smooth_noise(rng, h, w, 3))
    # t = 0 at the centre, 1 on the border; soft edge over ~2 % of the image.
    t = dist / np.maximum(radius, 1e-3)
    inside = np.clip((1.0 - t) / 0.08 + 0.5, 0.0, 1.0)[..., None]   # (h, w, 1) alpha

    # Pigment: light brown at the rim, dark brown at the centre, with patchy variation.
    light = np.array([0.62, 0.42, 0.30], np.float32) * rng.uniform(0.85, 1.1)
    dark = np.array([0.28, 0.16, 0.12], np.float32) * rng.uniform(0.6, 1.2)
    depth = np.clip(1.0 - t + 0.25 * _smooth_noise(rng, h, w, 5), 0.0, 1.0)[..., None]
    pigment = light + (dark - light) * depth

    # Pigment network: a sine mesh whose phase is perturbed by smooth noise, darker lines.
    freq = rng.uniform(40, 70)
    ang = rng.uniform(0, np.pi)
    mu = xx * np.cos(ang) + yy * np.sin(ang)                        # rotated frame
    mv = -xx * np.sin(ang) + yy * np.cos(ang)
    mesh = (np.abs(np.sin(freq * mu + 2.5 * _smooth_noise(rng, h, w, 8)))
            * np.abs(np.sin(freq * mv + 2.5 * _smooth_noise(rng, h, w, 8))))
    lines = (1.0 - np.clip(mesh * 3.0, 0.0, 1.0))[..., None]        # 1 on the mesh lines
    strength = rng.uniform(0.15, 0.35)
    pigment = pigment * (1.0 - strength * lines * np.clip(1.2 - t, 0, 1)[..., None])

    # Globules: a few dark dots inside the lesion.
    for _ in range(rng.integers(0, 8)):
        a, rr = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.7) * r0
        gy, gx = cy + rr * np.sin(a), cx + rr * np.cos(a)
        size = rng.uniform(0.008, 0.02)
        dot = np.exp(-((yy - gy) ** 2 + (xx - gx) ** 2) / (2 * size * size))[..., None]
        pigment = pigment * (1.0 - 0.5 * dot)

    img = img * (1.0 - inside) + pigment * inside

    # Hair: thin dark curves, y' = a x'^2 + b in a randomly rotated frame; darkness falls
    # off as a Gaussian of the vertical distance |y' - a x'^2 - b| (a fine approximation
    # for gently curved strands).
    if hair:
        for _ in range(rng.integers(0, 4)):
            ang = rng.uniform(0, np.pi)
            u = xx * np.cos(ang) + yy * np.sin(ang)
            v = -xx * np.sin(ang) + yy * np.cos(ang)
            d = np.abs(v - rng.normal(0, 0.3) * u * u - rng.uniform(-0.45, 0.45))
            width_h = rng.uniform(0.004, 0.008)
            strand = np.exp(-(d / width_h) ** 2)[..., None]
            img = img * (1.0 - 0.75 * strand) + 0.08 * 0.75 * strand

    # Vignette: the dark round field of view of a dermatoscope, plus a gentle falloff.
    if vignette:
        rv = np.sqrt(yy * yy + xx * xx)
        edge = rng.uniform(0.52, 0.72)
        img = img * (1.0 - 0.25 * np.clip(rv / edge, 0, 1) ** 4)[..., None]
        img = img * np.clip((edge - rv) / 0.03, 0.0, 1.0)[..., None]

    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def demo_image(index, size=128, seed=0):
    """Demo image number ``index`` as a (size, size, 3) uint8 array; depends only on
    (seed, index, size)."""
    rng = np.random.default_rng([seed, index])
    hair = rng.random() < 0.5
    vignette = rng.random() < 0.6
    return render_lesion(rng, size, size, hair=hair, vignette=vignette)


def _marker_settings(n, size, seed, fmt):
    return {"version": GENERATOR_VERSION, "n": n, "size": size, "seed": seed, "format": fmt}


def _is_complete(root, settings):
    try:
        with open(os.path.join(root, MARKER)) as f:
            return json.load(f) == settings
    except (OSError, ValueError):
        return False


def write_demo_images(folder, n=300, size=128, seed=0, fmt="png"):
    """Write demo images ``demo_0000.<fmt>``... into an existing ``folder`` (no marker)."""
    for i in range(n):
        path = os.path.join(folder, f"demo_{i:04d}.{fmt}")
        image = Image.fromarray(demo_image(i, size, seed))
        if fmt == "png":
            image.save(path, format="PNG")
        else:
            image.save(path, format="JPEG", quality=92)


# The built-in demo set, inside the repository's Datasets/ folder.
DEMO_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "Datasets", "demo")


def ensure_demo_data(root=DEMO_ROOT, n=300, size=128, seed=0, fmt="png", log=print):
    """Return ``root`` holding ``n`` demo images, writing them first if needed.

    An existing complete set with the same settings is reused. A set written by this function
    with other settings is replaced. A folder that exists, is not empty and was not written here
    is left alone (UserError), so no user data is ever deleted.
    """
    if not isinstance(n, int) or n < 1:
        raise UserError(f"the number of demo images must be a positive integer, got {n!r}")
    if not isinstance(size, int) or size < 8:
        raise UserError(f"the demo image size must be an integer >= 8, got {size!r}")
    if fmt not in ("png", "jpg"):
        raise UserError(f"the demo image format must be 'png' or 'jpg', got {fmt!r}")
    settings = _marker_settings(n, size, seed, fmt)
    if _is_complete(root, settings):
        return root
    ours = os.path.exists(os.path.join(root, MARKER))
    if os.path.isdir(root) and os.listdir(root) and not ours:
        raise UserError(f"{root} exists and is not a demo image folder; "
                        "remove it or choose another output folder")
    if os.path.exists(root) and not os.path.isdir(root):
        raise UserError(f"{root} exists and is not a folder")

    parent = os.path.dirname(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    log(f"writing {n} synthetic demo images ({size}x{size} {fmt}) to {root} ...")
    tmp = tempfile.mkdtemp(prefix=os.path.basename(os.path.abspath(root)) + ".tmp-", dir=parent)
    try:
        write_demo_images(tmp, n, size, seed, fmt)
        with open(os.path.join(tmp, MARKER), "w") as f:     # marker last
            json.dump(settings, f)
        if os.path.isdir(root):
            # Empty, or an earlier demo set with other settings: replace it.
            shutil.rmtree(root)
        try:
            os.rename(tmp, root)
        except OSError:
            # Another process finished the same set first: use theirs.
            if not _is_complete(root, settings):
                raise
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Write synthetic dermoscopy-like demo images (deterministic).")
    parser.add_argument("--out", default="Datasets/demo", help="output folder (default %(default)s)")
    parser.add_argument("--n", type=int, default=300, help="number of images (default %(default)s)")
    parser.add_argument("--size", type=int, default=128, help="side in pixels (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument("--format", choices=("png", "jpg"), default="png",
                        help="image format (default %(default)s)")
    args = parser.parse_args(argv)
    path = ensure_demo_data(args.out, n=args.n, size=args.size, seed=args.seed, fmt=args.format)
    print(f"demo images ready in {path}")


if __name__ == "__main__":
    run_cli(main)
