"""Finding a data set's images: every layout, the label CSVs, exclusions.

``find_images(data, labels, class_name)`` works out the layout of ``data`` and returns the
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

``images_in_folder(folder)`` is the plain ``folder`` layout alone (e.g. a folder of generated
images); ``read_exclusions`` and ``exclude_images`` leave out the images a CSV names (a
classifier's validation and test folds). Bad input raises ``DataError`` (a ``UserError``)
with a one-line message.
"""
import csv
import dataclasses
import os

import numpy as np

from skingan.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
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
