"""Train / validation / test split without lesion leakage, kept in ``split.csv``.

Images of one lesion always share a fold (HAM10000 and ISIC 2018 hold several images of many
lesions; splitting them apart puts near-copies of test images into training). Folds come from
scikit-learn's StratifiedGroupKFold, groups = lesion ids, stratified by class, in two stages:

1. n_test = round(1 / test_fraction) folds over all images; the first is the test fold;
2. n_val = round((1 - test_fraction) / val_fraction) folds over the rest; the first is the
   validation fold; everything else is training.

Defaults 0.15 / 0.15 give 7 and 6 folds: test 1/7 = 14 %, validation 6/7 * 1/6 = 14 %,
training 71 % (of images, approximately, since whole lesions move together).
An image without a lesion id is its own group, so a data set without lesion ids is split
stratified by image, with a warning.
"""
import csv
import os
import warnings

import numpy as np

from skingan.errors import UserError

FOLDS = ("train", "val", "test")
COLUMNS = ("image", "class", "lesion_id", "fold")


def _groups(records):
    """Group key per record: its lesion id, or the image itself when it has none."""
    return np.array([r.lesion_id or f"image:{r.image_id}" for r in records])


def _first_fold(labels, groups, n_splits, seed):
    """Boolean mask of the first StratifiedGroupKFold test fold."""
    from sklearn.model_selection import StratifiedGroupKFold
    if len(set(groups)) < n_splits:
        raise UserError(f"only {len(set(groups))} lesions to split into {n_splits} folds; "
                        "the data set is too small for a train/validation/test split")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # "least populated class has fewer members than n_splits": checked per fold below.
        warnings.simplefilter("ignore", UserWarning)
        _, held_out = next(splitter.split(np.zeros(len(labels)), labels, groups))
    mask = np.zeros(len(labels), bool)
    mask[held_out] = True
    return mask


def make_split(records, test_fraction=0.15, val_fraction=0.15, seed=0, log=print):
    """{image id: 'train' | 'val' | 'test'} for ``records`` (data_loader.LabelledImage)."""
    if not (0 < test_fraction < 1 and 0 < val_fraction < 1
            and test_fraction + val_fraction < 1):
        raise UserError(f"test and validation fractions must be in (0, 1) with a sum below 1, "
                        f"got {test_fraction} and {val_fraction}")
    labels = np.array([r.class_name for r in records])
    groups = _groups(records)
    if not any(r.lesion_id for r in records):
        log("warning: the data has no lesion ids, so the split is by image: images of one "
            "lesion may land in different folds and inflate every score (HAM10000's metadata "
            "or ISIC2018_Task3_Training_LesionGroupings.csv gives lesion ids)")
    is_test = _first_fold(labels, groups, max(2, round(1 / test_fraction)), seed)
    rest = np.flatnonzero(~is_test)
    n_val = max(2, round((1 - test_fraction) / val_fraction))
    is_val = np.zeros(len(records), bool)
    is_val[rest] = _first_fold(labels[rest], groups[rest], n_val, seed + 1)
    folds = np.where(is_test, "test", np.where(is_val, "val", "train"))
    split = {r.image_id: str(f) for r, f in zip(records, folds)}
    check_split(split, records)
    return split


def check_split(split, records):
    """Raise UserError unless ``split`` covers exactly ``records``, no lesion spans two folds
    and every class has images in every fold."""
    ids = {r.image_id for r in records}
    missing, extra = ids - set(split), set(split) - ids
    if missing or extra:
        raise UserError(f"the split does not match the data: {len(missing)} images of the data "
                        f"are not in it, {len(extra)} of its images are not in the data; delete "
                        "split.csv (or give another --split) to make a new one")
    bad = sorted(set(split.values()) - set(FOLDS))
    if bad:
        raise UserError(f"unknown fold names in the split: {', '.join(bad)} "
                        f"(expected {', '.join(FOLDS)})")
    lesion_folds = {}
    for r in records:
        if r.lesion_id:
            lesion_folds.setdefault(r.lesion_id, set()).add(split[r.image_id])
    spanning = [lesion for lesion, folds in lesion_folds.items() if len(folds) > 1]
    if spanning:
        raise UserError(f"{len(spanning)} lesions have images in more than one fold of the "
                        f"split (e.g. {spanning[0]}); that leaks test lesions into training")
    for class_name in sorted({r.class_name for r in records}):
        present = {split[r.image_id] for r in records if r.class_name == class_name}
        absent = [f for f in FOLDS if f not in present]
        if absent:
            raise UserError(f"class {class_name} has no images in the {' and '.join(absent)} "
                            "fold(s): it has too few lesions to be split three ways")


def write_split(path, split, records):
    """split.csv: image, class, lesion_id (empty if none), fold; one row per image."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for r in sorted(records, key=lambda r: r.image_id):
            writer.writerow([r.image_id, r.class_name, r.lesion_id or "", split[r.image_id]])


def read_split(path):
    """{image id: fold} from a split.csv."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise UserError(f"{path} is not a split file: its header is "
                                f"{','.join(reader.fieldnames or [])}, expected "
                                f"{','.join(COLUMNS)}")
            return {row["image"]: row["fold"] for row in reader}
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"cannot read split file {path}: {err}")


def load_or_make_split(path, records, test_fraction=0.15, val_fraction=0.15, seed=0,
                       log=print, write=True):
    """The split in ``path`` if it exists (checked against ``records``), else a new one,
    written there unless ``write`` is False (the caller writes it with ``write_split`` once
    every check has passed). Returns ({image id: fold}, reused: bool)."""
    if os.path.exists(path):
        split = read_split(path)
        check_split(split, records)
        log(f"reusing the split in {path}")
        return split, True
    split = make_split(records, test_fraction, val_fraction, seed, log)
    if write:
        write_split(path, split, records)
        log(f"wrote a new split to {path}")
    return split, False


def fold_counts(split, records):
    """{fold: {class: number of images}} for reports."""
    counts = {fold: {} for fold in FOLDS}
    for r in records:
        per_class = counts[split[r.image_id]]
        per_class[r.class_name] = per_class.get(r.class_name, 0) + 1
    return {fold: dict(sorted(c.items())) for fold, c in counts.items()}
