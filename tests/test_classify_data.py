"""classify.py's data side: listing every labelled image (three layouts, lesion ids) and the
split by lesion (no lesion in two folds, split.csv reused and checked)."""
import csv
import os
import shutil

import pytest

import data_loader
from conftest import write_blob_images
from skingan.benefit import split as split_module
from skingan.errors import UserError
from conftest import SMALL_COUNTS, quiet



def test_demo_set_is_read_as_ham10000_with_lesion_ids(demo_set):
    records = data_loader.list_labelled_images(demo_set)
    counts = {c: sum(r.class_name == c for r in records) for c in SMALL_COUNTS}
    assert counts == SMALL_COUNTS
    assert all(r.lesion_id and os.path.isfile(r.path) for r in records)
    # several images per lesion, and a lesion never mixes classes
    lesions = {}
    for r in records:
        lesions.setdefault(r.lesion_id, set()).add(r.class_name)
    assert len(lesions) < len(records) and all(len(c) == 1 for c in lesions.values())


def write_isic2018(root, n=8, groupings=True):
    """ISIC 2018 layout: images in a subfolder, one-hot ground truth, optional groupings."""
    images = os.path.join(root, "ISIC2018_Task3_Training_Input")
    write_blob_images(images, n=n, size=16)
    for i in range(n):
        os.rename(os.path.join(images, f"img_{i:03d}.png"),
                  os.path.join(images, f"ISIC_{i:07d}.png"))
    classes = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
    with open(os.path.join(root, "ISIC2018_Task3_Training_GroundTruth.csv"), "w") as f:
        f.write("image," + ",".join(classes) + "\n")
        for i in range(n):
            f.write(f"ISIC_{i:07d}," + ",".join("1.0" if k == i % 2 else "0.0"
                                                 for k in range(7)) + "\n")
    if groupings:
        with open(os.path.join(root, data_loader.LESION_GROUPINGS_CSV), "w") as f:
            f.write("image,lesion_id,diagnosis_confirm_type\n")
            f.writelines(f"ISIC_{i:07d},HAM_{i // 2:07d},histo\n" for i in range(n))
    return root


def test_isic2018_layout_takes_lesion_ids_from_the_groupings_csv(tmp_path):
    root = write_isic2018(str(tmp_path))
    records = data_loader.list_labelled_images(root)
    assert [r.image_id for r in records] == [f"ISIC_{i:07d}" for i in range(8)]
    assert [r.class_name for r in records[:2]] == ["MEL", "NV"]
    assert records[3].lesion_id == "HAM_0000001"
    os.remove(os.path.join(root, data_loader.LESION_GROUPINGS_CSV))
    assert all(r.lesion_id is None for r in data_loader.list_labelled_images(root))


def test_class_folders_have_no_lesion_ids_and_need_unique_file_names(tmp_path):
    for k, name in enumerate(["akiec", "nv"]):
        folder = write_blob_images(str(tmp_path / name), n=3, size=16, seed=k)
        for i in range(3):
            os.rename(os.path.join(folder, f"img_{i:03d}.png"),
                      os.path.join(folder, f"{name}_{i}.png"))
    records = data_loader.list_labelled_images(str(tmp_path))
    assert [(r.image_id, r.class_name, r.lesion_id) for r in records][:2] == [
        ("akiec_0", "akiec", None), ("akiec_1", "akiec", None)]
    shutil.copy(tmp_path / "nv" / "nv_0.png", tmp_path / "akiec" / "nv_0.png")
    with pytest.raises(UserError, match="two images share the name 'nv_0'"):
        data_loader.list_labelled_images(str(tmp_path))


def test_split_keeps_every_lesion_in_one_fold_and_every_class_in_every_fold(demo_set):
    records = data_loader.list_labelled_images(demo_set)
    split = split_module.make_split(records, seed=3, log=quiet)
    folds_of_lesion = {}
    for r in records:
        folds_of_lesion.setdefault(r.lesion_id, set()).add(split[r.image_id])
    assert all(len(folds) == 1 for folds in folds_of_lesion.values())
    counts = split_module.fold_counts(split, records)
    assert all(set(counts[fold]) == set(SMALL_COUNTS) for fold in split_module.FOLDS)
    n = len(records)
    assert 0.6 * n < sum(counts["train"].values()) < 0.8 * n


def test_split_without_lesion_ids_warns(demo_set):
    records = [data_loader.LabelledImage(r.image_id, r.path, r.class_name)
               for r in data_loader.list_labelled_images(demo_set)]
    said = []
    split = split_module.make_split(records, log=said.append)
    assert len(split) == len(records)
    assert any("no lesion ids" in line for line in said)


def test_split_csv_is_written_reused_and_checked(demo_set, tmp_path):
    records = data_loader.list_labelled_images(demo_set)
    path = str(tmp_path / "split.csv")
    first, reused = split_module.load_or_make_split(path, records, log=quiet)
    assert not reused
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["image", "class", "lesion_id", "fold"] and len(rows) == len(records)
    again, reused = split_module.load_or_make_split(path, records, seed=99, log=quiet)
    assert reused and again == first
    # a split that puts one lesion's images in two folds is refused
    by_lesion = {}
    for r in records:
        by_lesion.setdefault(r.lesion_id, []).append(r.image_id)
    mates = next(ids for ids in by_lesion.values() if len(ids) > 1)
    other = "test" if first[mates[0]] != "test" else "train"
    with pytest.raises(UserError, match="more than one fold"):
        split_module.check_split(dict(first, **{mates[0]: other}), records)
    # a split of other data is refused
    with pytest.raises(UserError, match="does not match the data: 0 images .* 1 of its images"):
        split_module.load_or_make_split(path, records[1:], log=quiet)
