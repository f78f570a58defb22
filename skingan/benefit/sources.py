"""Where the synthetic images of each listed class come from, and whether they may be used.

``--synthetic CLASS=SOURCE``: SOURCE is a folder of images, or a GAN run (a run name in the
models folder, or a run folder); a run is asked for images through skingan.sampling, in
``generate_from_run`` (the one place this package samples a GAN). A class-conditional
run serves several classes at once: ``--synthetic df,vasc=RUN`` asks it for each class.

Provenance: a GAN run records the images it trained on in ``trained_images.txt`` (one image
id, a file stem such as ISIC_0024306, per line) in its run folder; generate.py copies it beside
images it writes. A source that trained on any validation or test image is refused: its
images could carry those images into training. A source without the file is used, and marked
'unknown' in the report.
"""
import dataclasses
import os
import shutil

import numpy as np
from PIL import Image

import data_loader
from skingan.errors import UserError

TRAINED_IMAGES = "trained_images.txt"


@dataclasses.dataclass
class Source:
    class_name: str            # as spelled in the data
    spec: str                  # SOURCE as the user gave it
    kind: str                  # 'folder' | 'run'
    path: str                  # the image folder, or the run folder
    provenance: str = "unknown"   # 'training fold only' | 'unknown'
    trained_on: int = None     # number of image ids in trained_images.txt, if any
    images_folder: str = None  # the folder the images are read from (generated, for a run)
    available: int = None      # images in that folder
    copying: dict = None       # the data-copying test of its images (check_copying)

    def describe(self):
        what = f"GAN run {self.spec}" if self.kind == "run" else f"folder {self.path}"
        trained = f", trained on {self.trained_on} images" if self.trained_on else ""
        return f"{self.class_name}: {what} (provenance: {self.provenance}{trained})"


def parse_spec(text):
    """'CLASS=SOURCE' -> (class, source); for argparse's type=."""
    class_name, sep, source = text.partition("=")
    if not sep or not class_name.strip() or not source.strip():
        raise UserError(f"--synthetic takes CLASS=SOURCE (a folder of images or a GAN run "
                        f"name), got '{text}'")
    return class_name.strip(), source.strip()


def _is_run_folder(path):
    return any(os.path.isfile(os.path.join(path, name))
               for name in ("config.json", "generator.keras"))


def resolve(class_name, spec, models_dir):
    """A Source for SOURCE: an image folder, or a run (name in models_dir, or run folder)."""
    if os.path.isdir(spec) and not _is_run_folder(spec):
        if not data_loader._walk_images(spec):
            raise UserError(f"--synthetic {class_name}={spec}: the folder holds no images "
                            f"({', '.join(data_loader.IMAGE_EXTENSIONS)})")
        return Source(class_name, spec, "folder", os.path.abspath(spec))
    run_dir = spec if os.path.isdir(spec) else os.path.join(models_dir, spec)
    if not (os.path.isdir(run_dir) and _is_run_folder(run_dir)):
        raise UserError(f"--synthetic {class_name}={spec}: neither a folder of images nor a GAN "
                        f"run in {models_dir}")
    return Source(class_name, spec, "run", os.path.abspath(run_dir))


def read_trained_images(folder):
    """The image ids in folder/trained_images.txt, or None if there is no such file."""
    path = os.path.join(folder, TRAINED_IMAGES)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return {line.strip() for line in f if line.strip()}


def check_leak(source, split, log=print):
    """Refuse a source whose GAN trained on validation or test images (UserError naming the
    overlap); record its provenance. Images in a folder named like held-out images (a copy of
    real test images, say) are refused the same way."""
    held_out = {image for image, fold in split.items() if fold != "train"}
    trained = read_trained_images(source.path)
    if trained is not None:
        overlap = sorted(trained & held_out)
        if overlap:
            raise UserError(
                f"--synthetic {source.class_name}={source.spec}: its GAN trained on {len(overlap)} "
                f"validation/test images (e.g. {', '.join(overlap[:3])}); train it on the "
                "training fold of this split only, or its images leak the test set")
        source.provenance, source.trained_on = "training fold only", len(trained)
    else:
        log(f"warning: {source.describe()}: no {TRAINED_IMAGES}, so it is not known which "
            "real images (if any) made these images; the report marks it 'unknown'")
    if source.kind == "folder":
        stems = {os.path.splitext(os.path.basename(p))[0]
                 for p in data_loader._walk_images(source.path)}
        copies = sorted(stems & held_out)
        if copies:
            raise UserError(f"--synthetic {source.class_name}={source.spec}: {len(copies)} of its "
                            f"files are named like validation/test images (e.g. {copies[0]})")


def check_copying(source, train_uint8, heldout_uint8, generated_uint8):
    """The data-copying test (skingan.copying, pixels-32 feature) of the source's images
    against the class's real training-fold images, with its validation and test images as
    the held-out set; stored in source.copying. The rare classes' held-out sets are small:
    the most cells up to the default that they fill (fewer is still the paper's test, coarser);
    {"C_T": None, "reason": ...} when none works."""
    from skingan import copying
    reason = "no synthetic images"
    if len(generated_uint8) and len(heldout_uint8) and len(train_uint8):
        feats = copying.pixel_features(train_uint8, heldout_uint8, generated_uint8)
        for cells in range(copying.DEFAULT_CELLS, 0, -1):
            try:
                result, _ = copying.run_test(*feats, feature=copying.PIXEL_FEATURE, cells=cells)
            except copying.CopyingError as err:
                reason = str(err)
                continue
            source.copying = {k: result[k] for k in ("C_T", "near_copy_fraction", "cells",
                                                     "feature", "copies")}
            return source.copying
    source.copying = {"C_T": None, "reason": reason}
    return source.copying


def copying_text(info):
    """The report's words for a source's check_copying result."""
    if not info or info.get("C_T") is None:
        return "data copying: not tested" + (f" ({info['reason']})" if info else "")
    return (f"data copying: C_T {info['C_T']:.2f}, near copies {info['near_copy_fraction']:.2f} "
            f"({info['feature']}, {info['cells']} cells; C_T < -3: copies)")


def check_folder_resolution(source, resolution):
    """Refuse a folder whose images are smaller than the classifier input: upscaled, they
    would differ from the real images in sharpness alone, a cue the classifier can learn."""
    small = 0
    for path in data_loader._walk_images(source.path):
        try:
            with Image.open(path) as img:
                small += min(img.size) < resolution
        except OSError:
            continue        # unreadable files are skipped (and reported) when decoding
    if small:
        raise UserError(f"--synthetic {source.class_name}={source.spec}: {small} images are "
                        f"smaller than the classifier's --resolution {resolution}; use images "
                        f"of at least {resolution} px or a lower --resolution")


def open_run(run, models_dir, min_resolution, class_name=None):
    """GAN run ``run``'s generator, checked: (skingan.sampling's bundle, the label of
    ``class_name`` for a class-conditional run, else None). Refuses an unknown class and a
    generator whose R < min_resolution."""
    from skingan.sampling import load_generator
    bundle = load_generator(run, models_dir)
    label = None
    if bundle.classes is not None:
        try:
            label = bundle.class_index(class_name)
        except UserError as err:
            raise UserError(f"--synthetic {class_name}={run}: {err}") from None
    if bundle.resolution < min_resolution:
        raise UserError(f"--synthetic: run {run} makes {bundle.resolution}x{bundle.resolution} "
                        f"images, smaller than the classifier's --resolution {min_resolution}; "
                        "train the GAN at that resolution or lower --resolution")
    return bundle, label


def check_run(source, models_dir, min_resolution):
    """Before any work: a run source's generator loads, knows its class and is large
    enough (UserError otherwise)."""
    open_run(source.path, models_dir, min_resolution, source.class_name)


def generate_from_run(run, n, seed, models_dir, min_resolution, class_name=None, log=print):
    """The one call into skingan.sampling: ``n`` uint8 images (n, R, R, 3) from GAN run
    ``run``, image i drawn from seed ``seed + i``; from a class-conditional run, of
    ``class_name``. Refuses a generator whose R < min_resolution. A progress line about every
    10 s."""
    import time

    from skingan.sampling import generate_images
    bundle, label = open_run(run, models_dir, min_resolution, class_name)
    if n == 0:
        return np.zeros((0, bundle.resolution, bundle.resolution, 3), np.uint8)
    batches, done, last = [], 0, time.perf_counter()
    for _, images in generate_images(bundle, n, seed, batch_size=64, label=label):
        batches.append(images)
        done += len(images)
        if time.perf_counter() - last > 10 and done < n:
            log(f"generating {class_name or ''} images: {done}/{n}")
            last = time.perf_counter()
    return np.concatenate(batches)


def materialise_run(source, n, seed, models_dir, out_folder, min_resolution, log=print):
    """Generate ``n`` images of a run source into ``out_folder`` (seedNNNNNN.png), copy its
    trained_images.txt beside them, and point the source at that folder."""
    images = generate_from_run(source.path, n, seed, models_dir, min_resolution,
                               source.class_name, log)
    if os.path.isdir(out_folder):
        shutil.rmtree(out_folder)
    os.makedirs(out_folder)
    from skingan.images import save_png
    for i, image in enumerate(images):
        save_png(image, os.path.join(out_folder, f"seed{seed + i:06d}.png"))
    trained = os.path.join(source.path, TRAINED_IMAGES)
    if os.path.isfile(trained):
        shutil.copy(trained, os.path.join(out_folder, TRAINED_IMAGES))
    log(f"generated {len(images)} {source.class_name} images from run {source.spec} into "
        f"{out_folder}")
    source.images_folder, source.available = out_folder, len(images)


def pick_paths(source, n, seed):
    """``n`` image paths of a folder source (a seeded random subset if it holds more; all of
    them, fewer than asked, if it holds fewer), sorted."""
    paths = data_loader._walk_images(source.images_folder or source.path)
    source.available = len(paths)
    if len(paths) > n:
        keep = np.random.default_rng(seed).choice(len(paths), n, replace=False)
        paths = [paths[i] for i in sorted(keep)]
    return paths
