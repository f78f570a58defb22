"""Every labelled image of a data set, all classes, with its lesion id when the data set
has one: the listing the classifier experiment splits and conditional training loads."""
import csv
import dataclasses
import os

from skingan.data.find import (DataError, _choose_csv, _class_folders, _find_label_csvs,
                               _first, _read_header, _read_labels, _walk_images)


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
