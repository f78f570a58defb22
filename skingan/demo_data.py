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

    log(f"writing {n} synthetic demo images ({size}x{size} {fmt}) to {root} ...")
    return _write_folder(root, settings, lambda tmp: write_demo_images(tmp, n, size, seed, fmt))


def _write_folder(root, settings, write):
    """Fill a temporary folder beside `root` with write(folder), mark it complete with
    `settings` (the marker last), and rename it to `root`: a demo set is whole or absent.
    An empty `root`, or an earlier demo set with other settings, is replaced; if another
    process finished the same set first, theirs is used."""
    parent = os.path.dirname(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(os.path.abspath(root)) + ".tmp-", dir=parent)
    try:
        write(tmp)
        with open(os.path.join(tmp, MARKER), "w") as f:     # marker last
            json.dump(settings, f)
        if os.path.isdir(root):
            shutil.rmtree(root)
        try:
            os.rename(tmp, root)
        except OSError:
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


# ----------------------------------------------------------------------------------------------
# Multi-class demo set, for the classifier experiment (classify.py)
# ----------------------------------------------------------------------------------------------
# Four visually distinct lesion kinds named by their HAM10000 codes. Each lesion is drawn once
# and photographed several times (rotated, shifted, relit), as HAM10000 holds several images
# of one lesion; the metadata CSV has HAM10000's header so the ordinary loader reads it.
# Colours are RGB in [0, 1]; radius is in units of the image side. The rare class (df) varies
# widely in colour (hue), so a few dozen of its lesions do not cover it: more real lesions
# help a classifier, repeating the same ones does not (benchmarks/bench_benefit.py).
CLASS_STYLES = {
    "nv": dict(radius=(0.17, 0.25), wobble=0.08, light=(0.62, 0.44, 0.32),
               dark=(0.36, 0.23, 0.16), network=0.3, globules=3, veil=0.0, milia=0, scar=0.0),
    "mel": dict(radius=(0.2, 0.3), wobble=0.35, light=(0.50, 0.32, 0.24),
                dark=(0.14, 0.08, 0.07), network=0.35, globules=8, veil=0.6, milia=0, scar=0.0),
    "bkl": dict(radius=(0.17, 0.27), wobble=0.15, light=(0.74, 0.60, 0.44),
                dark=(0.52, 0.40, 0.29), network=0.08, globules=0, veil=0.0, milia=12, scar=0.0),
    "df": dict(radius=(0.15, 0.23), wobble=0.1, light=(0.60, 0.42, 0.31),
               dark=(0.40, 0.26, 0.18), network=0.25, globules=0, veil=0.0, milia=0, scar=0.45,
               hue=0.35),
}
DEMO_CLASS_COUNTS = {"nv": 150, "mel": 120, "bkl": 120, "df": 60}   # df is the rare class
DEMO_RARE_CLASS = "df"
MULTICLASS_VERSION = 3
VIEW_MARGIN = 1.6      # a lesion is drawn on a 1.6x larger canvas so rotated crops stay filled


def _dots(rng, yy, xx, count, cy, cx, spread, size_range):
    """Sum of ``count`` Gaussian dots around (cy, cx), clipped to [0, 1]; shape of yy."""
    field = np.zeros_like(yy)
    for _ in range(count):
        a, rr = rng.uniform(0, 2 * np.pi), rng.uniform(0, spread)
        s = rng.uniform(*size_range)
        field += np.exp(-((yy - cy - rr * np.sin(a)) ** 2 + (xx - cx - rr * np.cos(a)) ** 2)
                        / (2 * s * s))
    return np.clip(field, 0.0, 1.0)


def render_class_lesion(rng, size, style, extent=1.0):
    """One lesion of a class ``style`` (see CLASS_STYLES) as a (size, size, 3) uint8 array.
    The canvas spans ``extent`` image sides, so extent > 1 leaves room around the lesion."""
    coords = ((np.arange(size, dtype=np.float32) + 0.5) / size - 0.5) * extent
    yy, xx = np.meshgrid(coords, coords, indexing="ij")          # (size, size), image units
    skin = np.array([0.85, 0.65, 0.57], np.float32) * (1.0 - 0.12 * rng.random())
    img = skin * (1.0 + 0.05 * _smooth_noise(rng, size, size, 4)[..., None])

    # Outline r(theta) = r0 (1 + sum_k a_k cos(k theta + phi_k)); t = 0 centre, 1 border.
    cy, cx = rng.normal(0, 0.03, 2)
    r0 = rng.uniform(*style["radius"])
    theta = np.arctan2(yy - cy, xx - cx)
    wobble = sum(rng.normal(0, style["wobble"] / k) * np.cos(k * theta + rng.uniform(0, 6.3))
                 for k in range(2, 7))
    t = np.hypot(yy - cy, xx - cx) / np.maximum(r0 * (1.0 + wobble), 1e-3)
    inside = np.clip((1.0 - t) / 0.08 + 0.5, 0.0, 1.0)[..., None]

    tone = rng.uniform(0.85, 1.1)
    light, dark = np.array(style["light"]) * tone, np.array(style["dark"]) * tone
    if style.get("hue"):    # a per-lesion colour cast: a class whose colour varies widely
        cast = np.exp(rng.normal(0, style["hue"], 3))
        light, dark = light * cast, dark * cast
    depth = np.clip(1.0 - t + 0.3 * _smooth_noise(rng, size, size, 5), 0, 1)[..., None]
    pigment = light + (dark - light) * depth
    freq, ang = rng.uniform(45, 70), rng.uniform(0, np.pi)
    mesh = np.abs(np.sin(freq * (xx * np.cos(ang) + yy * np.sin(ang)))
                  * np.sin(freq * (yy * np.cos(ang) - xx * np.sin(ang))))
    pigment *= 1.0 - style["network"] * (1.0 - np.clip(3 * mesh, 0, 1))[..., None]
    pigment *= 1.0 - 0.5 * _dots(rng, yy, xx, style["globules"], cy, cx, 0.7 * r0,
                                 (0.008, 0.018))[..., None]
    if style["veil"]:       # blue-grey veil over part of the lesion
        patch = np.clip(_smooth_noise(rng, size, size, 3) + 0.2, 0, 1)[..., None]
        pigment += (np.array([0.35, 0.40, 0.50]) - pigment) * style["veil"] * patch
    if style["milia"]:      # milia-like cysts: small pale dots
        pigment += (0.9 - pigment) * 0.7 * _dots(rng, yy, xx, style["milia"], cy, cx,
                                                 0.8 * r0, (0.006, 0.012))[..., None]
    if style["scar"]:       # a pale, scar-like central patch of varying strength
        centre = np.exp(-(t / rng.uniform(0.35, 0.6)) ** 2)[..., None]
        pigment += (0.92 - pigment) * style["scar"] * rng.uniform(0.5, 1.0) * centre
    img = img * (1.0 - inside) + pigment * inside
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def lesion_views(rng, style, n_views, size):
    """``n_views`` photographs (size, size, 3) uint8 of one lesion: each a rotated, shifted
    crop of the same drawing, relit and with its own sensor grain."""
    canvas = round(VIEW_MARGIN * size)
    drawing = Image.fromarray(render_class_lesion(rng, canvas, style, extent=VIEW_MARGIN))
    views = []
    for _ in range(n_views):
        turned = drawing.rotate(rng.uniform(0, 360), resample=Image.Resampling.BICUBIC)
        dy, dx = rng.integers(-size // 20, size // 20 + 1, 2)
        top, left = (canvas - size) // 2 + dy, (canvas - size) // 2 + dx
        view = np.asarray(turned.crop((left, top, left + size, top + size)), np.float32)
        view = view * rng.uniform(0.9, 1.1) + rng.normal(0, 3.0, view.shape)
        views.append(np.clip(np.round(view), 0, 255).astype(np.uint8))
    return views


def class_lesions(class_name, n_images, size, seed, first_lesion=0):
    """Yield (lesion number, image array) for ``n_images`` images of ``class_name``, 1 to 4
    views per lesion; lesion k is drawn from its own stream (seed, class, k), so a larger set
    starts with the same lesions."""
    code = list(CLASS_STYLES).index(class_name)
    made, lesion = 0, first_lesion
    while made < n_images:
        rng = np.random.default_rng([seed, 1000 + code, lesion])
        for view in lesion_views(rng, CLASS_STYLES[class_name], int(rng.integers(1, 5)), size):
            if made == n_images:
                break
            yield lesion, view
            made += 1
        lesion += 1


def write_class_images(folder, class_name, n_images, size=64, seed=0, first_lesion=0,
                       prefix="demo"):
    """Write ``n_images`` PNGs of one demo class into ``folder``; return their paths.
    first_lesion > the lesions of the demo set gives new lesions (held-out real images)."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, (lesion, image) in enumerate(
            class_lesions(class_name, n_images, size, seed, first_lesion)):
        paths.append(os.path.join(folder, f"{prefix}_{class_name}_{lesion:05d}_{i:04d}.png"))
        Image.fromarray(image).save(paths[-1], format="PNG")
    return paths


def _write_multiclass(folder, counts, size, seed, log=print):
    """Images in two folders (as HAM10000's part_1 / part_2) and a HAM10000-style CSV; a line
    per class written."""
    rows, number = [], 0
    for class_name, n in counts.items():
        if number:
            log(f"  {number} of {sum(counts.values())} images written")
        for lesion, image in class_lesions(class_name, n, size, seed):
            number += 1
            part = os.path.join(folder, f"images_part_{1 + lesion % 2}")
            os.makedirs(part, exist_ok=True)
            image_id = f"DEMO_{number:07d}"
            Image.fromarray(image).save(os.path.join(part, image_id + ".png"), format="PNG")
            lesion_id = f"DEMOL_{class_name}_{lesion:05d}"
            rows.append([lesion_id, image_id, class_name, "synthetic", "", "", ""])
    with open(os.path.join(folder, "demo_metadata.csv"), "w", newline="") as f:
        f.write("lesion_id,image_id,dx,dx_type,age,sex,localization\n")
        f.writelines(",".join(row) + "\n" for row in rows)


# The multi-class demo set (HAM10000 layout) that `train.py --conditional` and
# `classify.py` use when no --data is given.
MULTICLASS_ROOT = os.path.join(os.path.dirname(DEMO_ROOT), "demo-classes")


def ensure_multiclass_demo_data(root=MULTICLASS_ROOT, counts=None, size=64, seed=0,
                                log=print):
    """Return ``root`` holding the multi-class demo set (HAM10000 layout), writing it first if
    needed. Same rules as ensure_demo_data: a complete set with the same settings is reused,
    a folder not written here is never touched."""
    counts = dict(counts or DEMO_CLASS_COUNTS)
    unknown = sorted(set(counts) - set(CLASS_STYLES))
    if unknown:
        raise UserError(f"unknown demo classes {', '.join(unknown)}; "
                        f"choose from {', '.join(CLASS_STYLES)}")
    settings = {"version": MULTICLASS_VERSION, "counts": counts, "size": size, "seed": seed}
    if _is_complete(root, settings):
        return root
    if os.path.isdir(root) and os.listdir(root) \
            and not os.path.exists(os.path.join(root, MARKER)):
        raise UserError(f"{root} exists and is not a demo image folder; "
                        "remove it or choose another output folder")
    log(f"writing the multi-class demo set ({', '.join(f'{k} {v}' for k, v in counts.items())}"
        f" images, {size}x{size}) to {root} ...")
    return _write_folder(root, settings,
                         lambda tmp: _write_multiclass(tmp, counts, size, seed, log))
