"""The image pipeline shared by both GANs: find images, decode them once, stream batches.

Three steps, each usable alone:

1. ``find_images(data, labels, class_name)`` works out the layout of ``data`` and returns the
   sorted image paths of one class (an ``ImageSource``). Layouts, tried in this order:

   - ``isic2018``: an ISIC 2018 Task 3 ground-truth CSV (header ``image,MEL,NV,BCC,AKIEC,BKL,
     DF,VASC``, one-hot rows) and the images it names. The CSV is ``labels`` if given, else the
     one found in ``data`` or a direct subfolder (``ISIC2018_Task3_Training_GroundTruth/``), so
     ``data`` can be the unzipped download root. Images are looked up by file stem anywhere
     below ``data``.
   - ``ham10000``: the same with ``HAM10000_metadata.csv`` (header ``lesion_id,image_id,dx,...``);
     its images may be spread over several folders (``HAM10000_images_part_1/``, ``_part_2/``).
   - ``class-folders``: no CSV, a class name is given and ``data`` has a subfolder of that name
     (``data/akiec/``); all images below that subfolder, at any depth.
   - ``folder``: no CSV and no class name: every image below ``data``, at any depth. When
     ``data`` has two or more subfolders holding images, they are taken for class folders
     and a ``DataError`` lists them with their counts instead (name one, or ``all``).

   CSV types are recognised by their header, not their file name. If no CSV is found in ``data``
   but a class is named and ``data`` has no class subfolders, the parent folder is searched too,
   so pointing at ``ISIC2018_Task3_Training_Input/`` itself works.

   Class names match case-insensitively and are reported as spelled in the data (``MEL`` for
   ISIC 2018, ``mel`` for HAM10000). Training is one class at a time, as in both papers, so with
   a CSV and no class name a ``DataError`` lists the classes and their counts; the class name
   ``all`` takes every image the CSV names (or, with class folders, every image below ``data``).

2. ``load_images(source, resolution, crop)`` decodes every image once, in a thread pool (PIL
   releases the GIL while decoding), to RGB and resizes it to ``resolution`` x ``resolution``
   (antialiased Lanczos; ``crop="center"`` first crops to a centred square; JPEGs are
   decoded in draft mode at >= 2x the target size, which is faster and nearly exact). The result is one
   uint8 array ``(N, R, R, 3)``. Unreadable files are skipped and reported once. With
   ``cache_dir`` the array is saved as a ``.npy`` file named by a hash of (paths, sizes, mtimes,
   resolution, crop) and later loads memory-map it, with no decoding at all. Its size and
   SHA-256 are recorded beside it; a cache file that no longer matches is rebuilt.

3. ``make_dataset(images, batch_size, seed, ...)`` is the infinite training stream of float32
   NHWC batches in ``value_range``. The batch for step ``s`` is a pure function of
   ``(seed, s)``: sample ``j`` of it has global index ``i = s * B + j``, comes from epoch
   ``i // N`` at position ``i % N`` of that epoch's permutation, and its flips/rotation are
   drawn from a hash of ``(seed, i)``. So ``start_step=k`` starts exactly where a stream from
   step 0 would be after ``k`` batches, at no cost, and batches straddle epoch boundaries
   (every batch is full, even when N < B).

``load_data`` does 1 and 2 and returns the images with a description dict for ``config.json``.
Bad input raises ``DataError`` (a ``UserError``) with a one-line message.
"""
import concurrent.futures
import csv
import dataclasses
import functools
import hashlib
import json
import os
import time

import numpy as np
from PIL import Image

from skingan.errors import UserError
from skingan.fileio import atomic_path, write_json

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
CROP_MODES = ("resize", "center")
CACHE_VERSION = 2          # bump when decoding changes, so old cache files are not reused
SHOW_FIRST = 3             # how many example paths/ids an error or report names


class DataError(UserError):
    """The data given cannot be used: missing path, no images, bad CSV, unknown class..."""


@dataclasses.dataclass
class ImageSource:
    """What ``find_images`` found: the image paths of the chosen class and where they came from."""
    paths: list              # sorted absolute paths of the images to load
    layout: str              # 'folder' | 'class-folders' | 'isic2018' | 'ham10000'
    class_name: str = None   # as spelled in the data ('MEL', 'akiec'), 'all', or None
    root: str = ""           # the folder searched for images
    labels: str = None       # the label CSV used, if any

    def describe(self):
        what = f"class {self.class_name}" if self.class_name else "all images"
        extra = f", labels {self.labels}" if self.labels else ""
        return f"{len(self.paths)} images ({what}, layout {self.layout}) in {self.root}{extra}"


def _first(items, n=SHOW_FIRST):
    """'a, b, c, ...' for messages."""
    items = list(items)
    text = ", ".join(str(x) for x in items[:n])
    return text + (", ..." if len(items) > n else "")


# ----------------------------------------------------------------------------------------------
# 1. Finding the images
# ----------------------------------------------------------------------------------------------

def _walk_images(root):
    """All image files below ``root`` (any depth), sorted. Hidden files and folders and macOS
    ``__MACOSX`` folders (AppleDouble '._x.jpg' files that are not images) are skipped."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__MACOSX"]
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.join(folder, name))
    return sorted(found)


def _read_header(path):
    """First row of a CSV file, or None if it cannot be read as text."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def _csv_kind(header):
    """'isic2018', 'ham10000' or None, from a CSV header row."""
    if not header:
        return None
    names = [h.strip().lower() for h in header]
    if "image_id" in names and "dx" in names:
        return "ham10000"
    # ISIC 2018 ground truth: image, then one-hot class columns. The same download's
    # LesionGroupings CSV (image, lesion_id, diagnosis_confirm_type) is not labels.
    if names[0] == "image" and len(names) >= 2 and "lesion_id" not in names:
        return "isic2018"
    return None


def _find_label_csvs(folder):
    """Recognised label CSVs in ``folder`` and its direct subfolders, sorted."""
    candidates = []
    if not os.path.isdir(folder):
        return candidates
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.lower().endswith(".csv") and os.path.isfile(path):
            candidates.append(path)
        elif os.path.isdir(path) and not name.startswith("."):
            for sub in sorted(os.listdir(path)):
                if sub.lower().endswith(".csv"):
                    candidates.append(os.path.join(path, sub))
    return [p for p in candidates if _csv_kind(_read_header(p))]


def _choose_csv(csvs):
    """One CSV out of several recognised ones: a single one whose name says 'train' wins
    (an ISIC download may also hold the validation and test ground truth)."""
    if len(csvs) == 1:
        return csvs[0]
    training = [p for p in csvs if "train" in os.path.basename(p).lower()]
    if len(training) == 1:
        return training[0]
    raise DataError(f"found several label CSV files ({_first(csvs, 5)}); "
                    "choose one with --labels PATH")


def _read_labels(path):
    """Parse a label CSV into (kind, {image_id: class}) with class names as in the file."""
    if not os.path.exists(path):
        raise DataError(f"label CSV not found: {path}")
    header = _read_header(path)
    if header is None:
        raise DataError(f"cannot read label CSV {path} (not a readable text CSV file)")
    kind = _csv_kind(header)
    if kind is None:
        raise DataError(
            f"label CSV {path} has header '{','.join(header)[:80]}', expected ISIC 2018 "
            "'image,MEL,NV,BCC,AKIEC,BKL,DF,VASC' or HAM10000 'lesion_id,image_id,dx,...'")
    names = [h.strip() for h in header]
    lower = [h.lower() for h in names]
    if kind == "ham10000":
        id_column, dx_column = lower.index("image_id"), lower.index("dx")
    labels = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            next(reader)
            for line, row in enumerate(reader, start=2):
                if not row or not "".join(row).strip():
                    continue
                if len(row) < len(names):
                    raise DataError(f"label CSV {path} line {line} has {len(row)} columns, "
                                    f"the header has {len(names)}")
                if kind == "ham10000":
                    image_id, label = row[id_column], row[dx_column].strip()
                else:
                    image_id = row[0]
                    try:
                        scores = [float(v) for v in row[1:len(names)]]
                    except ValueError:
                        raise DataError(f"label CSV {path} line {line}: expected one-hot numbers "
                                        f"after the image name, got '{','.join(row)[:80]}'")
                    # One-hot row: the class is the column holding the largest value (1.0);
                    # a row with no positive value has no class and is left out.
                    if max(scores) <= 0:
                        continue
                    label = names[1 + int(np.argmax(scores))]
                # Ids may be written with an extension; images are matched by file stem.
                labels[os.path.splitext(image_id.strip())[0]] = label
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read label CSV {path}: {err}")
    if not labels:
        raise DataError(f"label CSV {path} has no rows")
    return kind, labels


def _class_counts_text(counts):
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def _match_class(requested, available, where):
    """Canonical spelling of ``requested`` among ``available`` (case-insensitive) or DataError."""
    by_lower = {name.lower(): name for name in available}
    key = requested.strip().lower()
    if key not in by_lower:
        raise DataError(f"class '{requested}' not found in {where}; classes present: "
                        f"{', '.join(available) if available else 'none'}")
    return by_lower[key]


def _from_csv(data, csv_path, class_name):
    kind, labels = _read_labels(csv_path)
    # Class counts in order of first appearance in the header (ISIC) or sorted (HAM).
    counts = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    counts = dict(sorted(counts.items(), key=lambda kv: kv[0].lower()))
    if class_name is None:
        raise DataError(f"{os.path.basename(csv_path)} has {len(counts)} classes; choose one "
                        f"with --class: {_class_counts_text(counts)} "
                        "(or --class all for every image)")
    if class_name.strip().lower() == "all" and "all" not in {c.lower() for c in counts}:
        wanted = sorted(labels)
        chosen = "all"
    else:
        chosen = _match_class(class_name, list(counts), os.path.basename(csv_path))
        wanted = sorted(image_id for image_id, label in labels.items() if label == chosen)

    # Index every image below ``data`` by file stem; the first path in sorted order wins.
    by_stem = {}
    for path in _walk_images(data):
        by_stem.setdefault(os.path.splitext(os.path.basename(path))[0], path)
    missing = [image_id for image_id in wanted if image_id not in by_stem]
    if len(missing) == len(wanted):
        raise DataError(f"no images found in {data} for the {len(wanted)} images of class "
                        f"{chosen} named in {os.path.basename(csv_path)} (e.g. {_first(wanted)})")
    if missing:
        raise DataError(f"{len(missing)} of the {len(wanted)} images of class {chosen} named in "
                        f"{os.path.basename(csv_path)} are missing under {data}: {_first(missing)}")
    paths = sorted(by_stem[image_id] for image_id in wanted)
    return ImageSource(paths, kind, chosen, data, csv_path)


def _class_folders(data):
    """{subfolder name: image paths below it} for direct subfolders of ``data`` holding images."""
    folders = {}
    for name in sorted(os.listdir(data)):
        path = os.path.join(data, name)
        if os.path.isdir(path) and not name.startswith(".") and name != "__MACOSX":
            images = _walk_images(path)
            if images:
                folders[name] = images
    return folders


def find_images(data, labels=None, class_name=None):
    """Find the images of one class in ``data``; see the module docstring for the layouts.

    data: folder (str or path-like). labels: optional label CSV path (ISIC 2018 or HAM10000).
    class_name: class to take, case-insensitive; None = no class (only valid without a CSV);
    'all' = every image. Returns an ``ImageSource``; raises ``DataError`` on bad input.
    """
    if data is None:
        raise DataError("no data path given")
    data = os.path.abspath(os.fspath(data))
    if not os.path.exists(data):
        raise DataError(f"data path not found: {data}")
    if not os.path.isdir(data):
        raise DataError(f"data path is not a folder: {data}")
    if class_name is not None:
        class_name = str(class_name).strip() or None

    if labels is not None:
        labels = os.path.abspath(os.fspath(labels))
        if not os.path.isfile(labels):
            raise DataError(f"label CSV not found: {labels}")
        return _from_csv(data, labels, class_name)

    csvs = _find_label_csvs(data)
    if csvs:
        return _from_csv(data, _choose_csv(csvs), class_name)

    if class_name is not None:
        folders = _class_folders(data)
        if class_name.strip().lower() == "all" and "all" not in {f.lower() for f in folders}:
            paths = _walk_images(data)
            if not paths:
                raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {data}")
            return ImageSource(paths, "class-folders" if folders else "folder", "all", data)
        if folders:
            chosen = _match_class(class_name, list(folders), f"the subfolders of {data}")
            return ImageSource(folders[chosen], "class-folders", chosen,
                               os.path.join(data, chosen))
        # No subfolders: maybe ``data`` is an images folder with the CSV beside it
        # (--data ISIC2018_Task3_Training_Input --class MEL).
        parent_csvs = _find_label_csvs(os.path.dirname(data))
        if parent_csvs:
            return _from_csv(data, _choose_csv(parent_csvs), class_name)
        raise DataError(f"class '{class_name}' given, but {data} has neither a label CSV "
                        "nor class subfolders; leave the class out to use every image")

    # Class folders without a class would mix every class into one training set.
    folders = _class_folders(data)
    if len(folders) >= 2:
        counts = _class_counts_text({name: len(paths) for name, paths in folders.items()})
        raise DataError(f"{data} has {len(folders)} class folders; choose one with --class: "
                        f"{counts} (or --class all for every image)")
    return images_in_folder(data)


def images_in_folder(folder):
    """Every image below ``folder``, at any depth, whatever its subfolders are called
    (layout ``folder``): e.g. a folder of generated images."""
    folder = os.path.abspath(os.fspath(folder))
    if not os.path.exists(folder):
        raise DataError(f"folder not found: {folder}")
    if not os.path.isdir(folder):
        raise DataError(f"not a folder: {folder}")
    paths = _walk_images(folder)
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {folder}")
    return ImageSource(paths, "folder", None, folder)


# ----------------------------------------------------------------------------------------------
# 2. Decoding (once) and caching
# ----------------------------------------------------------------------------------------------

def _to_rgb(img):
    """Any PIL image -> mode 'RGB'. 16-bit greyscale is scaled to 8 bits (not clipped);
    transparent pixels are composited onto black."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        a = a / 257.0 if img.mode != "I" or a.max() > 255 else a   # 65535 / 257 = 255
        img = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.asarray(img), 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB") if img.mode != "RGB" else img


def decode_image(path, resolution, crop="resize"):
    """Read one image file -> (resolution, resolution, 3) uint8 RGB. Raises on unreadable files.

    For JPEGs, ``draft`` lets libjpeg decode at 1/2, 1/4 or 1/8 scale (an averaging, so
    antialiased, reduction in the DCT domain) while keeping at least 2 x resolution pixels;
    the Lanczos resize then does the last >= 2x. Measured on 600x450 lesion JPEGs at 64 px:
    within 0.14 grey levels on average (2 at most) of a full decode, about 2.5x faster.
    """
    with Image.open(path) as img:
        if img.format == "JPEG":
            # Smallest draft whose shorter side (center) or both sides (resize) stay >= 2R.
            w, h = img.size
            short = min(w, h) if crop == "center" else None
            need = (2 * resolution * w // short, 2 * resolution * h // short) if short \
                else (2 * resolution, 2 * resolution)
            img.draft("RGB", need)
        img.load()
        img = _to_rgb(img)
        if crop == "center":
            return np.asarray(_resize_short_side_center_crop(img, resolution), dtype=np.uint8)
        img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
        return np.asarray(img, dtype=np.uint8)


def _resize_short_side_center_crop(img, resolution):
    """torchvision's Resize(R) then CenterCrop(R) on a PIL image, as the DCGAN authors load
    their data: the shorter side becomes R (the longer int(R * long / short)), bilinear
    (antialiased when shrinking), then the centred R x R square, its offset rounded as
    int(round((side - R) / 2))."""
    w, h = img.size
    if w <= h:
        size = (resolution, int(resolution * h / w))
    else:
        size = (int(resolution * w / h), resolution)
    if size != img.size:
        img = img.resize(size, Image.Resampling.BILINEAR)
    left = int(round((size[0] - resolution) / 2.0))
    top = int(round((size[1] - resolution) / 2.0))
    return img.crop((left, top, left + resolution, top + resolution))


def _decode_or_none(path, resolution, crop):
    # Module-level lookup of ``decode_image`` so tests can replace it.
    try:
        return decode_image(path, resolution, crop), None
    except Exception as err:   # corrupt, truncated, empty, not an image: skip, never crash
        return None, f"{type(err).__name__}: {err}"


def _cache_key(paths, resolution, crop):
    """Hash of everything the decoded array depends on."""
    h = hashlib.sha256()
    h.update(json.dumps([CACHE_VERSION, resolution, crop]).encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _check_resolution_and_crop(resolution, crop):
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) \
            or resolution < 1:
        raise DataError(f"resolution must be a positive integer, got {resolution!r}")
    if crop not in CROP_MODES:
        raise DataError(f"crop must be one of {', '.join(CROP_MODES)}, got {crop!r}")


def _load(source, resolution, crop="resize", cache_dir=None, log=print, workers=None):
    """load_images, also returning the skipped files: (images, skipped)."""
    _check_resolution_and_crop(resolution, crop)
    resolution = int(resolution)
    paths = list(source.paths)
    if not paths:
        raise DataError(f"no images found in {source.root}")

    cache_file = meta_file = None
    if cache_dir is not None:
        key = _cache_key(paths, resolution, crop)
        cache_file = os.path.join(cache_dir, f"images_{resolution}px_{crop}_{key}.npy")
        meta_file = cache_file[:-4] + ".json"
        cached = _read_cache(cache_file, meta_file, resolution, log)
        if cached is not None:
            return cached

    workers = workers or min(8, os.cpu_count() or 1)
    log(f"decoding {len(paths)} images to {resolution}x{resolution} "
        f"(crop: {crop}, {workers} threads) ...")
    start = time.perf_counter()
    images = np.empty((len(paths), resolution, resolution, 3), np.uint8)   # (N, R, R, 3)
    ok = np.zeros(len(paths), bool)
    skipped = []
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = pool.map(lambda p: _decode_or_none(p, resolution, crop), paths)
        for i, (array, error) in enumerate(results):
            if array is None:
                skipped.append([paths[i], error])
            else:
                images[i] = array
                ok[i] = True
    if not ok.all():
        images = images[ok]
    seconds = time.perf_counter() - start
    log(f"decoded {len(images)} images in {seconds:.1f} s "
        f"({len(paths) / max(seconds, 1e-9):.0f} images/s)")
    _report_skipped(skipped, log)
    if len(images) == 0:
        raise DataError(f"no readable images in {source.root}: all {len(paths)} files are "
                        f"corrupt or not images (e.g. {_first(p for p, _ in skipped)})")

    if cache_file is not None:
        os.makedirs(cache_dir, exist_ok=True)
        with atomic_path(cache_file) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, images)
            # size and checksum of the bytes on disk, so a later damage is noticed
            size, digest = os.path.getsize(tmp), _file_sha256(tmp)
        write_json(meta_file, {"resolution": resolution, "crop": crop,
                               "num_images": len(images), "skipped": skipped,
                               "bytes": size, "sha256": digest})
        log(f"cached decoded images in {cache_file}")
        images = np.load(cache_file, mmap_mode="r")   # pages from disk; frees the copy
    return images, skipped


def _short_error(path, error, limit=80):
    """A skipped file's error without its own path (already named), cut to `limit` chars."""
    for quoted in (repr(path), f'"{path}"', path):
        error = error.replace(quoted, "").rstrip(" :")
    return error if len(error) <= limit else error[:limit - 3] + "..."


def _read_cache(cache_file, meta_file, resolution, log):
    """(images, skipped) from a complete cache entry whose .npy still has the size and
    checksum its .json recorded; None to decode again, saying why in one line when an
    entry exists but is damaged. The .json is written after the .npy: its presence means
    the .npy was complete when written."""
    if not (os.path.exists(meta_file) and os.path.exists(cache_file)):
        return None
    try:
        with open(meta_file) as f:
            meta = json.load(f)
        skipped = meta["skipped"]
        problem = _cache_damage(cache_file, meta, resolution)
    except (OSError, ValueError, KeyError, TypeError) as err:
        problem = f"its description {os.path.basename(meta_file)} is unreadable ({err})"
    if problem:
        log(f"cache file {cache_file}: {problem}; rebuilding it from the images")
        return None
    images = np.load(cache_file, mmap_mode="r")
    log(f"loaded {len(images)} cached {resolution}x{resolution} images from {cache_file}")
    _report_skipped(skipped, log)
    return images, skipped


def _cache_damage(cache_file, meta, resolution):
    """What is wrong with a cached .npy, as a phrase, or None when it is intact."""
    if "bytes" not in meta or "sha256" not in meta:
        return "no size or checksum recorded (written by an older version)"
    size = os.path.getsize(cache_file)
    if size != meta["bytes"]:
        return f"truncated or extended: {size} bytes where {meta['bytes']} were written"
    if _file_sha256(cache_file) != meta["sha256"]:
        return "damaged: its checksum differs from the one recorded"
    images = np.load(cache_file, mmap_mode="r")
    if images.shape != (meta["num_images"], resolution, resolution, 3) \
            or images.dtype != np.uint8:
        return f"holds {images.dtype} {images.shape}, not the images recorded"
    return None


def _file_sha256(path, chunk=1 << 24):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _report_skipped(skipped, log):
    # Each path is shown whole; only the error text after it is shortened.
    if skipped:
        log(f"skipped {len(skipped)} unreadable file(s): "
            f"{_first(f'{p} ({_short_error(p, e)})' for p, e in skipped)}")


def load_images(source, resolution, crop="resize", cache_dir=None, log=print, workers=None):
    """Decode ``source.paths`` to one uint8 array (N, resolution, resolution, 3), RGB.

    crop: 'resize' squashes the whole image to a square (as both source projects do);
    'center' crops the centred square first. Unreadable files are skipped and reported once
    through ``log``. With ``cache_dir`` the array is stored as a .npy file and reused
    (memory-mapped, no decoding) while the files, resolution and crop stay the same.
    """
    return _load(source, resolution, crop, cache_dir, log, workers)[0]


def image_id(path):
    """An image's identifier: its file stem (ISIC_0024306), as the label CSVs name images."""
    return os.path.splitext(os.path.basename(path))[0]


def read_exclusions(path):
    """The image ids a CSV excludes from GAN training: with a ``fold`` column (a
    ``split.csv`` as classify.py writes it) every image whose fold is not ``train``, else
    every image in its ``image`` column."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise DataError(f"exclusion CSV not found: {path}")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = [name.strip().lower() for name in reader.fieldnames or []]
        if "image" not in fields:
            raise DataError(f"{path} has no 'image' column (header: "
                            f"{','.join(reader.fieldnames or [])})")
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
                for row in reader]
    if "fold" in fields:
        return {r["image"] for r in rows if r["fold"].lower() != "train"}
    return {r["image"] for r in rows}


def exclude_images(source, excluded):
    """``source`` without the images whose ids are in ``excluded``: (source, count removed)."""
    kept = [p for p in source.paths if image_id(p) not in excluded]
    if not kept:
        raise DataError(f"every image of {source.root} is excluded; nothing left to train on")
    return dataclasses.replace(source, paths=kept), len(source.paths) - len(kept)


def load_data(data, labels=None, class_name=None, resolution=64, crop="resize",
              cache_dir=None, log=print, exclude=None):
    """find_images + load_images. Returns (images uint8 (N, R, R, 3), description dict).

    exclude: a CSV of images to leave out (see ``read_exclusions``), e.g. a classifier's
    validation and test folds. The description's ``image_ids`` lists the ids of the images
    loaded, in the order of ``images``.
    """
    source = find_images(data, labels, class_name)
    excluded = 0
    if exclude is not None:
        source, excluded = exclude_images(source, read_exclusions(exclude))
    log(f"data: {source.describe()}" + (f"; {excluded} excluded by {exclude}"
                                        if exclude is not None else ""))
    images, skipped = _load(source, resolution, crop, cache_dir, log)
    unreadable = {p for p, _ in skipped}
    description = {
        "path": os.path.abspath(os.fspath(data)),
        "labels": source.labels,
        "layout": source.layout,
        "class": source.class_name,
        "num_images": int(len(images)),
        "num_skipped": len(skipped),
        "resolution": int(resolution),
        "crop": crop,
        "num_excluded": excluded,
        "image_ids": [image_id(p) for p in source.paths if p not in unreadable],
    }
    log(f"using {len(images)} images at {resolution}x{resolution}"
        + (f" ({len(skipped)} skipped)" if skipped else ""))
    return images, description


def parse_class_list(text):
    """'all' or a comma-separated class list ('df,vasc,nv') -> 'all' or a list of names."""
    names = [c.strip() for c in str(text).split(",") if c.strip()]
    if len(names) == 1 and names[0].lower() == "all":
        return "all"
    if not names:
        raise DataError(f"no class named in {text!r}")
    if len({n.lower() for n in names}) != len(names):
        raise DataError(f"a class is named twice in {text!r}")
    return names


def load_labelled_data(data, labels=None, classes="all", resolution=64, crop="resize",
                       cache_dir=None, log=print, exclude=None):
    """Every image of several classes with its class, for conditional training.

    classes: 'all' (every class, in case-insensitive alphabetical order) or a list of class
    names (matched case-insensitively, kept in the order given): the class index of an
    image is its class's position in this order. Layouts as for ``list_labelled_images``.
    Returns (images uint8 (N, R, R, 3), class indices int32 (N,), description dict); the
    description adds ``classes`` (names as spelled in the data, in index order) and
    ``class_counts`` (images loaded per class) to what ``load_data`` describes.
    """
    records = list_labelled_images(data, labels)
    present = sorted({r.class_name for r in records}, key=str.lower)
    where = "the labels of " + os.path.abspath(os.fspath(data))
    if classes == "all":
        names = present
    else:
        names = [_match_class(c, present, where) for c in classes]
    if len(names) < 2:
        raise DataError(f"conditional training needs two or more classes; {where} has "
                        f"{', '.join(present) or 'none'}")
    index = {name: k for k, name in enumerate(names)}
    records = [r for r in records if r.class_name in index]
    records.sort(key=lambda r: (index[r.class_name], r.image_id))
    source = ImageSource([r.path for r in records], "labelled", ",".join(names),
                         os.path.abspath(os.fspath(data)), labels)
    excluded = 0
    if exclude is not None:
        source, excluded = exclude_images(source, read_exclusions(exclude))
        kept = set(source.paths)
        records = [r for r in records if r.path in kept]
    empty = [n for n in names if not any(r.class_name == n for r in records)]
    if empty:
        raise DataError(f"no images left of class {', '.join(empty)}"
                        + (f" after the exclusions in {exclude}" if exclude else ""))
    log(f"data: {len(records)} images of {len(names)} classes in {source.root}"
        + (f"; {excluded} excluded by {exclude}" if exclude is not None else ""))
    images, skipped = _load(source, resolution, crop, cache_dir, log)
    unreadable = {p for p, _ in skipped}
    kept = [r for r in records if r.path not in unreadable]
    class_ids = np.array([index[r.class_name] for r in kept], np.int32)
    counts = [int(np.sum(class_ids == k)) for k in range(len(names))]
    if 0 in counts:
        raise DataError(f"no readable images of class {names[counts.index(0)]}")
    description = {
        "path": os.path.abspath(os.fspath(data)), "labels": labels and os.path.abspath(labels),
        "layout": "labelled", "class": ",".join(names), "classes": names,
        "class_counts": counts, "num_images": int(len(images)), "num_skipped": len(skipped),
        "resolution": int(resolution), "crop": crop, "num_excluded": excluded,
        "image_ids": [r.image_id for r in kept],
    }
    log(f"using {len(images)} images at {resolution}x{resolution}: "
        + ", ".join(f"{n} {c}" for n, c in zip(names, counts))
        + (f" ({len(skipped)} skipped)" if skipped else ""))
    return images, class_ids, description


# ----------------------------------------------------------------------------------------------
# 3. The training stream
# ----------------------------------------------------------------------------------------------

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x):
    """SplitMix64 finaliser: a bijective 64-bit mixer (Steele et al. 2014), vectorised, uint64."""
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & _M64
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
    return x ^ (x >> np.uint64(31))


def _hash(*parts):
    """Stateless random uint64 from integer parts (scalars or arrays, broadcast).
    The same parts give the same number on any machine and numpy version."""
    h = np.uint64(0)
    with np.errstate(over="ignore"):
        for part in parts:
            h = _splitmix64(h ^ np.asarray(part).astype(np.uint64))
    return h


_PERMUTATION, _AUGMENT, _CLASS, _MEMBER = 1, 2, 3, 4   # stream tags: no two uses share numbers
CLASS_BALANCES = ("data", "uniform", "sqrt")


@functools.lru_cache(maxsize=8)
def _epoch_permutation(seed, epoch, n):
    """The order of the n images in ``epoch``: argsort of n random keys hash(seed, epoch, k)."""
    keys = _hash(_PERMUTATION, seed, epoch, np.arange(n, dtype=np.uint64))
    perm = np.argsort(keys, kind="stable")
    perm.flags.writeable = False
    return perm


def batch_indices(step, batch_size, n, seed):
    """Global sample indices i = step*B + j -> (image indices (B,), global indices (B,))."""
    i = np.int64(step) * batch_size + np.arange(batch_size, dtype=np.int64)
    epoch, position = i // n, i % n
    index = np.empty(batch_size, np.int64)
    for e in np.unique(epoch):                 # a batch spans one epoch, two, or more if B > N
        mask = epoch == e
        index[mask] = _epoch_permutation(seed, int(e), n)[position[mask]]
    return index, i


def iterations_per_epoch(n, batch_size):
    """Batches in one epoch when the last, partial batch is kept: ceil(n / batch_size)."""
    return -(-int(n) // int(batch_size))


def epoch_batch_indices(step, batch_size, n, seed):
    """Like batch_indices, but epochs never share a batch: step s is batch b = s mod K of
    epoch e = s div K, K = ceil(N / B), holding positions b*B .. min((b+1)*B, N) - 1 of
    that epoch's permutation, so the epoch's last batch is partial (N mod B images) as with
    a PyTorch DataLoader without drop_last. Global indices e*N + position stay unique."""
    per_epoch = iterations_per_epoch(n, batch_size)
    epoch, b = divmod(int(step), per_epoch)
    position = np.arange(b * batch_size, min((b + 1) * batch_size, n), dtype=np.int64)
    return _epoch_permutation(seed, epoch, n)[position], np.int64(epoch) * n + position


def class_probabilities(counts, balance="data"):
    """How often each class is drawn, from its image counts n_c: p_c proportional to n_c
    ('data', as the images come), 1 ('uniform', every class equally often) or sqrt(n_c)
    ('sqrt', in between). float64 (K,), summing to 1."""
    if balance not in CLASS_BALANCES:
        raise DataError(f"unknown class balance {balance!r}; choose one of "
                        f"{', '.join(CLASS_BALANCES)}")
    counts = np.asarray(counts, np.float64)
    weights = {"data": counts, "uniform": np.ones_like(counts), "sqrt": np.sqrt(counts)}[balance]
    return weights / weights.sum()


def _unit_uniform(bits):
    """uint64 random bits -> float64 in [0, 1) from their top 53 bits."""
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


class ClassSampler:
    """The images' classes (conditional training) and how often each class is drawn,
    worked out once per stream; ``images`` picks a batch's images from them.

    With a balance other than 'data', sample i's class is c with probability p_c (inverse
    CDF of u = hash(seed, i)) and its image a uniform draw among that class's images (with
    replacement, as a weighted sampler does): a pure function of (seed, i)."""

    def __init__(self, class_ids, balance="data"):
        self.class_ids = np.asarray(class_ids, np.int32)                    # (N,)
        self.balance = balance
        self.counts = np.bincount(self.class_ids)                            # (K,)
        self.cdf = np.cumsum(class_probabilities(self.counts, balance))      # checks balance
        # the images sorted by class: class k's are by_class[start[k] : start[k] + counts[k]]
        self.by_class = np.argsort(self.class_ids, kind="stable")
        self.start = np.cumsum(self.counts) - self.counts

    def images(self, index, global_index, seed):
        """The images of samples `global_index`: `index` (the data order) for 'data',
        else class-balanced draws."""
        if self.balance == "data":
            return index
        u = _unit_uniform(_hash(_CLASS, seed, global_index))
        classes = np.minimum(np.searchsorted(self.cdf, u, side="right"), len(self.counts) - 1)
        pick = _hash(_MEMBER, seed, global_index) % self.counts[classes].astype(np.uint64)
        return self.by_class[self.start[classes] + pick.astype(np.int64)]


def augment_flags(global_index, seed):
    """Per-sample augmentation bits from hash(seed, i): (hflip, vflip, quarter turns 0..3)."""
    bits = _hash(_AUGMENT, seed, global_index)
    hflip = (bits & np.uint64(1)) == 1
    vflip = ((bits >> np.uint64(1)) & np.uint64(1)) == 1
    turns = ((bits >> np.uint64(2)) & np.uint64(3)).astype(np.int64)
    return hflip, vflip, turns


def _pixels(images):
    """View a uint8 (..., 3) array as (...) items of 3 bytes, one per RGB pixel, without
    copying: flips and rotations then move whole pixels, several times faster than moving
    single bytes with stride -3."""
    return images.view(np.dtype((np.void, 3))).reshape(images.shape[:-1])


def make_batch(images, step, batch_size, seed=0, hflip=True, vflip=False, rot90=False,
               partial_batches=False, classes=None):
    """The uint8 batch (B, R, R, 3) for ``step``, in numpy. ``make_dataset`` streams exactly
    these, converted to float. Augmentations, applied in this order to sample j: mirror
    left-right, mirror up-down, rotate by 90 degrees x turns (counter-clockwise).
    partial_batches: epoch by epoch, the last batch partial (epoch_batch_indices).
    classes (a ClassSampler): return (batch, the batch's class indices (B,) int32) instead,
    the images drawn with its balance at the same global indices, so the batch sizes and
    the augmentation draws stay those of the data order."""
    indices = epoch_batch_indices if partial_batches else batch_indices
    index, i = indices(step, batch_size, len(images), seed)
    if classes is not None:
        index = classes.images(index, i, seed)
    do_h, do_v, turns = augment_flags(i, seed)
    src = _pixels(images)                                   # (N, R, R) pixel items
    batch = np.empty((len(index),) + images.shape[1:], np.uint8)
    dst = _pixels(batch)                                    # (B, R, R) view of batch
    for j in range(len(index)):
        img = src[index[j]]                                 # (R, R) view, nothing copied yet
        if hflip and do_h[j]:
            img = img[:, ::-1]                              # mirror left-right (W axis)
        if vflip and do_v[j]:
            img = img[::-1]                                 # mirror up-down (H axis)
        if rot90 and turns[j]:
            img = np.rot90(img, int(turns[j]))
        dst[j] = img                                        # the one copy per image
    if classes is not None:
        return batch, classes.class_ids[index]
    return batch


def make_dataset(images, batch_size, seed=0, value_range=(0.0, 1.0), hflip=True, vflip=False,
                 rot90=False, start_step=0, partial_batches=False, class_ids=None,
                 class_balance="data"):
    """Infinite tf.data stream of float32 batches (batch_size, R, R, 3) in ``value_range``.

    images: uint8 array (N, R, R, 3), in memory or memory-mapped. value_range: (0, 1) for a
    sigmoid generator (SL-StyleGAN), (-1, 1) for tanh (DCGAN). hflip (default on), vflip,
    rot90: random per-sample augmentations (dermoscopy has no canonical orientation).

    Element k of the stream is the batch of step ``start_step + k``, a pure function of
    (seed, step) (see the module docstring), so resuming at step s with ``start_step=s``
    continues the exact stream. Every batch is full (batches straddle epochs), so no
    remainder is ever dropped. Works with ``strategy.experimental_distribute_dataset``
    (the batch size is static, so the global batch is split across replicas).

    partial_batches=True is the DCGAN authors' epoch loop instead: each epoch's images in
    a fresh order, the last batch of an epoch partial, never straddling (see
    epoch_batch_indices); the batch dimension is then None.

    class_ids (N,) int (conditional training): the stream yields (images, class indices
    (B,) int32) pairs, each label aligned with its image, and ``class_balance`` says how
    often each class is drawn (class_probabilities, ClassSampler).
    """
    import tensorflow as tf    # imported here so the finding/decoding half needs no TensorFlow

    images = images if isinstance(images, np.ndarray) else np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2] \
            or images.dtype != np.uint8:
        raise DataError(f"images must be a uint8 array (N, R, R, 3), got {images.dtype} "
                        f"{images.shape}")
    if not images.flags.c_contiguous:
        images = np.ascontiguousarray(images)
    if len(images) == 0:
        raise DataError("no images to make a dataset from")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise DataError(f"value_range must be (low, high) with low < high, got {value_range!r}")
    if int(start_step) < 0:
        raise DataError(f"start_step must be >= 0, got {start_step}")
    batch_size, seed = int(batch_size), int(seed)
    shape = (None if partial_batches else batch_size,) + images.shape[1:]

    classes = None
    if class_ids is not None:
        classes = ClassSampler(class_ids, class_balance)
        if classes.class_ids.shape != (len(images),):
            raise DataError(f"class_ids must have one entry per image, got "
                            f"{classes.class_ids.shape} for {len(images)} images")

    def numpy_batch(step):
        return make_batch(images, int(step), batch_size, seed, hflip, vflip, rot90,
                          partial_batches, classes)

    def to_float(step):
        # numpy_function keeps the (possibly multi-GB) array out of the graph: no 2 GB
        # constant limit, and a memory-mapped cache is read page by page.
        if classes is None:
            batch = tf.numpy_function(numpy_batch, [step], tf.uint8, stateful=False)
        else:
            batch, labels = tf.numpy_function(numpy_batch, [step], [tf.uint8, tf.int32],
                                              stateful=False)
            labels.set_shape(shape[:1])
        batch.set_shape(shape)
        # uint8 [0, 255] -> float32 [lo, hi]: x * (hi - lo) / 255 + lo.
        batch = tf.cast(batch, tf.float32) * ((hi - lo) / 255.0) + lo
        return batch if classes is None else (batch, labels)

    steps = tf.data.Dataset.counter(start=int(start_step), dtype=tf.int64)
    return (steps.map(to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE))


# ----------------------------------------------------------------------------------------------
# 4. Every labelled image of a data set, all classes (for the classifier experiment)
# ----------------------------------------------------------------------------------------------

LESION_GROUPINGS_CSV = "ISIC2018_Task3_Training_LesionGroupings.csv"


@dataclasses.dataclass(frozen=True)
class LabelledImage:
    """One labelled image: its id (the file stem), file, class as spelled in the data, and
    the id of the lesion it shows (None when the data set has no lesion ids)."""
    image_id: str
    path: str
    class_name: str
    lesion_id: str = None


def _is_lesion_groupings(path):
    """ISIC 2018's lesion-grouping CSV (image, lesion_id, diagnosis_confirm_type) also starts
    with 'image', so _csv_kind takes it for a ground-truth CSV; it holds no labels."""
    header = [h.strip().lower() for h in (_read_header(path) or [])]
    return "lesion_id" in header and "image_id" not in header


def _read_lesion_ids(path, id_column):
    """{image id (file stem): lesion id} from a CSV with columns ``id_column`` and lesion_id."""
    lesions = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            reader.fieldnames = [h.strip().lower() for h in reader.fieldnames or []]
            for row in reader:
                image_id, lesion = (row.get(id_column) or "").strip(), \
                    (row.get("lesion_id") or "").strip()
                if image_id and lesion:
                    lesions[os.path.splitext(image_id)[0]] = lesion
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read lesion ids from {path}: {err}")
    return lesions


def _lesion_ids_for(kind, csv_path, data):
    """Lesion ids for a CSV layout: HAM10000 has them in its metadata; for ISIC 2018, the
    grouping CSV beside the ground truth, in ``data`` or a direct subfolder, if present."""
    if kind == "ham10000":
        return _read_lesion_ids(csv_path, "image_id")
    folders = [os.path.dirname(csv_path), data]
    for folder in folders:
        for path in [os.path.join(folder, LESION_GROUPINGS_CSV)] + _find_label_csvs(folder):
            if os.path.isfile(path) and _is_lesion_groupings(path):
                return _read_lesion_ids(path, "image")
    return {}


def _labelled_from_csv(data, csv_path):
    kind, labels = _read_labels(csv_path)
    by_stem = {}
    for path in _walk_images(data):
        by_stem.setdefault(os.path.splitext(os.path.basename(path))[0], path)
    missing = sorted(image_id for image_id in labels if image_id not in by_stem)
    if missing:
        raise DataError(f"{len(missing)} of the {len(labels)} images named in "
                        f"{os.path.basename(csv_path)} are missing under {data}: {_first(missing)}")
    lesions = _lesion_ids_for(kind, csv_path, data)
    return [LabelledImage(image_id, by_stem[image_id], label, lesions.get(image_id))
            for image_id, label in sorted(labels.items())]


def _labelled_from_class_folders(data, folders):
    records, seen = [], {}
    for class_name, paths in folders.items():
        for path in paths:
            image_id = os.path.splitext(os.path.basename(path))[0]
            if image_id in seen:
                # Image ids are file stems (GAN runs record the images they trained on by
                # stem), so a stem must name one image only.
                raise DataError(f"two images share the name '{image_id}' ({seen[image_id]} and "
                                f"{path}); image file names must be unique across classes")
            seen[image_id] = path
            records.append(LabelledImage(image_id, path, class_name))
    return sorted(records, key=lambda r: r.image_id)


def list_labelled_images(data, labels=None):
    """Every labelled image of ``data``, all classes, sorted by image id.

    Layouts as for ``find_images``: an ISIC 2018 ground-truth CSV, HAM10000 metadata, or class
    subfolders (``data/akiec/...``). ``labels`` picks the label CSV explicitly. Lesion ids come
    from HAM10000's ``lesion_id`` column or, for ISIC 2018, from
    ``ISIC2018_Task3_Training_LesionGroupings.csv`` when it is in ``data`` (or beside the
    CSV); otherwise they are None. Returns a list of ``LabelledImage``; raises DataError.
    """
    if data is None:
        raise DataError("no data path given")
    data = os.path.abspath(os.fspath(data))
    if not os.path.isdir(data):
        raise DataError(f"data folder not found: {data}")
    if labels is not None:
        labels = os.path.abspath(os.fspath(labels))
        if not os.path.isfile(labels):
            raise DataError(f"label CSV not found: {labels}")
        return _labelled_from_csv(data, labels)
    csvs = [p for p in _find_label_csvs(data) if not _is_lesion_groupings(p)]
    if csvs:
        return _labelled_from_csv(data, _choose_csv(csvs))
    folders = _class_folders(data)
    if folders:
        return _labelled_from_class_folders(data, folders)
    # An images folder with its label CSV beside it (ISIC2018_Task3_Training_Input/).
    parent_csvs = [p for p in _find_label_csvs(os.path.dirname(data))
                   if not _is_lesion_groupings(p)]
    if parent_csvs:
        return _labelled_from_csv(data, _choose_csv(parent_csvs))
    raise DataError(f"{data} holds no labelled images: the classifier needs a label CSV "
                    "(ISIC 2018 or HAM10000) or class subfolders")
