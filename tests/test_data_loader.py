"""Tests of data_loader: layouts, bad input, decoding, caching and the (seed, step) stream."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

import data_loader as dl
from skingan.data import decode
from skingan.errors import UserError
from conftest import quiet, write_image

ISIC_HEADER = "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC"
ISIC_CLASSES = ISIC_HEADER.split(",")[1:]
HAM_HEADER = "lesion_id,image_id,dx,dx_type,age,sex,localization"






def isic_row(image_id, cls):
    return image_id + "," + ",".join("1.0" if c == cls else "0.0" for c in ISIC_CLASSES)


def make_isic(root, labels, csv_in_subfolder=True, extra_images=()):
    """ISIC 2018 download layout under ``root``; labels: {image_id: class}."""
    for image_id in list(labels) + list(extra_images):
        write_image(root / "ISIC2018_Task3_Training_Input" / f"{image_id}.jpg")
    folder = root / "ISIC2018_Task3_Training_GroundTruth" if csv_in_subfolder else root
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "ISIC2018_Task3_Training_GroundTruth.csv"
    csv.write_text("\n".join([ISIC_HEADER] + [isic_row(i, c) for i, c in labels.items()]) + "\n")
    return csv


ISIC_LABELS = {"ISIC_0000001": "MEL", "ISIC_0000002": "NV", "ISIC_0000003": "MEL",
               "ISIC_0000004": "NV", "ISIC_0000005": "DF", "ISIC_0000006": "NV"}


def names(paths):
    return sorted(os.path.splitext(os.path.basename(p))[0] for p in paths)


# ----------------------------------------------------------------------------------------------
# Layouts
# ----------------------------------------------------------------------------------------------

def test_plain_folder_recursive_case_insensitive_extensions(tmp_path):
    expected = [write_image(tmp_path / "a.jpg"), write_image(tmp_path / "b.JPEG", fmt="JPEG"),
                write_image(tmp_path / "sub" / "c.PNG", fmt="PNG"),
                write_image(tmp_path / "sub" / "deeper" / "d.bmp")]
    (tmp_path / "notes.txt").write_text("not an image")
    write_image(tmp_path / ".hidden.jpg")
    write_image(tmp_path / "__MACOSX" / "e.jpg")
    source = dl.find_images(tmp_path)
    assert source.layout == "folder"
    assert source.class_name is None
    assert source.paths == sorted(expected)


def test_class_folders_nested_and_case_insensitive(tmp_path):
    akiec = [write_image(tmp_path / "akiec" / "gan_input" / f"{i}.jpg") for i in range(3)]
    write_image(tmp_path / "bcc" / "x.jpg")
    write_image(tmp_path / "bcc" / "y.png")
    source = dl.find_images(tmp_path, class_name="AKIEC")
    assert source.layout == "class-folders"
    assert source.class_name == "akiec"
    assert source.paths == sorted(akiec)
    everything = dl.find_images(tmp_path, class_name="all")
    assert len(everything.paths) == 5


def test_class_folders_without_a_class_list_the_classes_with_counts(tmp_path):
    for i in range(3):
        write_image(tmp_path / "akiec" / "gan_input" / f"{i}.jpg")
    write_image(tmp_path / "bcc" / "x.jpg")
    with pytest.raises(dl.DataError) as info:
        dl.find_images(tmp_path)
    message = str(info.value)
    assert "2 class folders; choose one with --class: akiec 3, bcc 1" in message
    assert "--class all" in message and "\n" not in message
    assert dl.find_images(tmp_path, class_name="all").layout == "class-folders"


def test_folder_with_one_subfolder_is_a_plain_folder(tmp_path):
    write_image(tmp_path / "a.jpg")
    write_image(tmp_path / "more" / "b.jpg")
    source = dl.find_images(tmp_path)
    assert source.layout == "folder" and len(source.paths) == 2


def test_images_in_folder_takes_every_image_whatever_the_subfolders(tmp_path):
    write_image(tmp_path / "x" / "a.png")
    write_image(tmp_path / "y" / "b.png")
    (tmp_path / "groundtruth.csv").write_text(ISIC_HEADER + "\n" + isic_row("a", "DF") + "\n")
    source = dl.images_in_folder(tmp_path)
    assert source.layout == "folder" and names(source.paths) == ["a", "b"]
    with pytest.raises(dl.DataError, match="folder not found"):
        dl.images_in_folder(tmp_path / "nope")


def test_class_folders_unknown_class_lists_present(tmp_path):
    write_image(tmp_path / "akiec" / "a.jpg")
    write_image(tmp_path / "bcc" / "b.jpg")
    with pytest.raises(dl.DataError, match=r"class 'mel' not found.*akiec, bcc"):
        dl.find_images(tmp_path, class_name="mel")


@pytest.mark.parametrize("csv_in_subfolder", [True, False])
def test_isic_download_root_gives_exactly_one_class(tmp_path, csv_in_subfolder):
    make_isic(tmp_path, ISIC_LABELS, csv_in_subfolder, extra_images=["ISIC_0009999"])
    source = dl.find_images(tmp_path, class_name="mel")
    assert source.layout == "isic2018"
    assert source.class_name == "MEL"
    assert names(source.paths) == ["ISIC_0000001", "ISIC_0000003"]
    assert source.labels.endswith("ISIC2018_Task3_Training_GroundTruth.csv")
    assert names(dl.find_images(tmp_path, class_name="Nv").paths) == \
        ["ISIC_0000002", "ISIC_0000004", "ISIC_0000006"]


def test_isic_lesion_groupings_csv_is_not_taken_for_labels(tmp_path):
    make_isic(tmp_path, ISIC_LABELS)
    with open(tmp_path / "ISIC2018_Task3_Training_LesionGroupings.csv", "w") as f:
        f.write("image,lesion_id,diagnosis_confirm_type\n")
        f.writelines(f"{i},IL_{n:07d},histopathology\n" for n, i in enumerate(ISIC_LABELS))
    source = dl.find_images(tmp_path, class_name="mel")
    assert source.layout == "isic2018" and names(source.paths) == ["ISIC_0000001",
                                                                   "ISIC_0000003"]


def test_isic_pointing_at_the_input_folder_finds_the_csv_beside_it(tmp_path):
    make_isic(tmp_path, ISIC_LABELS)
    source = dl.find_images(tmp_path / "ISIC2018_Task3_Training_Input", class_name="DF")
    assert source.layout == "isic2018"
    assert names(source.paths) == ["ISIC_0000005"]


def test_isic_without_class_lists_classes_with_counts(tmp_path):
    make_isic(tmp_path, ISIC_LABELS)
    with pytest.raises(dl.DataError) as info:
        dl.find_images(tmp_path)
    message = str(info.value)
    assert "DF 1" in message and "MEL 2" in message and "NV 3" in message
    assert "choose one with --class:" in message and "--class all" in message
    assert "class_name" not in message and "\n" not in message


def test_isic_row_without_a_positive_value_has_no_class(tmp_path):
    csv = make_isic(tmp_path, ISIC_LABELS)
    write_image(tmp_path / "ISIC2018_Task3_Training_Input" / "ISIC_0000007.jpg")
    with open(csv, "a") as f:
        f.write("ISIC_0000007," + ",".join(["0.0"] * 7) + "\n")
    assert names(dl.find_images(tmp_path, class_name="MEL").paths) == \
        ["ISIC_0000001", "ISIC_0000003"]


def test_isic_class_all_takes_every_labelled_image(tmp_path):
    make_isic(tmp_path, ISIC_LABELS, extra_images=["ISIC_0009999"])
    source = dl.find_images(tmp_path, class_name="ALL")
    assert source.class_name == "all"
    assert names(source.paths) == sorted(ISIC_LABELS)


def test_several_ground_truth_csvs_prefer_training(tmp_path):
    make_isic(tmp_path, ISIC_LABELS)
    (tmp_path / "ISIC2018_Task3_Validation_GroundTruth.csv").write_text(
        ISIC_HEADER + "\n" + isic_row("ISIC_0000001", "NV") + "\n")
    source = dl.find_images(tmp_path, class_name="MEL")
    assert "Training" in source.labels
    assert names(source.paths) == ["ISIC_0000001", "ISIC_0000003"]


def test_ham10000_two_image_folders(tmp_path):
    rows = [("HAM_0001", "ISIC_0000010", "mel", "part_1"), ("HAM_0001", "ISIC_0000011", "mel",
            "part_2"), ("HAM_0002", "ISIC_0000012", "nv", "part_1"),
            ("HAM_0003", "ISIC_0000013", "bkl", "part_2")]
    for _, image_id, _, part in rows:
        write_image(tmp_path / f"HAM10000_images_{part}" / f"{image_id}.jpg")
    (tmp_path / "HAM10000_metadata.csv").write_text(
        HAM_HEADER + "\n" + "".join(f"{lid},{iid},{dx},histo,45.0,male,back\n"
                                    for lid, iid, dx, _ in rows))
    source = dl.find_images(tmp_path, class_name="MEL")
    assert source.layout == "ham10000"
    assert source.class_name == "mel"
    assert names(source.paths) == ["ISIC_0000010", "ISIC_0000011"]


def test_explicit_labels_path_elsewhere(tmp_path):
    images = tmp_path / "images"
    for image_id in ISIC_LABELS:
        write_image(images / f"{image_id}.png", fmt="PNG")
    csv = tmp_path / "meta" / "gt.csv"
    csv.parent.mkdir()
    csv.write_text("\n".join([ISIC_HEADER] + [isic_row(i, c) for i, c in ISIC_LABELS.items()]))
    source = dl.find_images(images, labels=csv, class_name="nv")
    assert names(source.paths) == ["ISIC_0000002", "ISIC_0000004", "ISIC_0000006"]


# ----------------------------------------------------------------------------------------------
# Bad input: one-line DataError (a UserError) naming the problem
# ----------------------------------------------------------------------------------------------

def test_missing_path(tmp_path):
    with pytest.raises(dl.DataError, match="data path not found") as info:
        dl.find_images(tmp_path / "nope")
    assert isinstance(info.value, UserError)


def test_no_images(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(dl.DataError, match="no images"):
        dl.find_images(tmp_path)


def test_labels_csv_missing(tmp_path):
    write_image(tmp_path / "a.jpg")
    with pytest.raises(dl.DataError, match="label CSV not found"):
        dl.find_images(tmp_path, labels=tmp_path / "missing.csv", class_name="MEL")


def test_labels_csv_unreadable(tmp_path):
    write_image(tmp_path / "a.jpg")
    csv = tmp_path / "gt.csv"
    csv.write_bytes(b"\xff\xfe\x00\x81binary\x00garbage\x9c")
    with pytest.raises(dl.DataError, match="cannot read label CSV"):
        dl.find_images(tmp_path, labels=csv, class_name="MEL")


def test_labels_csv_without_expected_columns(tmp_path):
    write_image(tmp_path / "a.jpg")
    csv = tmp_path / "gt.csv"
    csv.write_text("filename,label\na.jpg,MEL\n")
    with pytest.raises(dl.DataError, match=r"header 'filename,label', expected ISIC 2018"):
        dl.find_images(tmp_path, labels=csv, class_name="MEL")


def test_class_not_in_csv_lists_present_classes(tmp_path):
    make_isic(tmp_path, ISIC_LABELS)
    with pytest.raises(dl.DataError, match=r"class 'vasc' not found.*DF, MEL, NV"):
        dl.find_images(tmp_path, class_name="vasc")


def test_images_named_in_csv_missing_on_disk(tmp_path):
    labels = {f"ISIC_{i:07d}": "MEL" for i in range(6)}
    make_isic(tmp_path, labels)
    for i in (1, 2, 4, 5):
        os.remove(tmp_path / "ISIC2018_Task3_Training_Input" / f"ISIC_{i:07d}.jpg")
    with pytest.raises(dl.DataError) as info:
        dl.find_images(tmp_path, class_name="MEL")
    message = str(info.value)
    assert "4 of the 6 images of class MEL" in message
    assert "ISIC_0000001, ISIC_0000002, ISIC_0000004, ..." in message


def test_bad_arguments(tmp_path):
    source = dl.ImageSource([write_image(tmp_path / "a.png")], "folder", None, str(tmp_path))
    with pytest.raises(dl.DataError, match="resolution"):
        dl.load_images(source, 0, log=quiet)
    with pytest.raises(dl.DataError, match="crop"):
        dl.load_images(source, 8, crop="bogus", log=quiet)
    images = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(dl.DataError, match="batch_size"):
        dl.make_dataset(images, 0)
    with pytest.raises(dl.DataError, match="value_range"):
        dl.make_dataset(images, 2, value_range=(1, -1))
    with pytest.raises(dl.DataError, match="uint8"):
        dl.make_dataset(images.astype(np.float32), 2)


# ----------------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------------

def test_corrupt_files_are_skipped_and_reported_once(tmp_path):
    good = [write_image(tmp_path / f"good{i}.jpg", color=(10 * i, 50, 60)) for i in range(3)]
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("this is not a JPEG")
    full = (tmp_path / "good0.jpg").read_bytes()
    big = tmp_path / "big.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(big)
    big.write_bytes(big.read_bytes()[: len(full) // 2 + 300])         # truncated
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    lines = []
    images, description = dl.load_data(tmp_path, resolution=8, log=lines.append)
    assert images.shape == (3, 8, 8, 3)
    assert description["num_images"] == 3
    assert description["num_skipped"] == 4
    reports = [line for line in lines if "skipped 4 unreadable" in line]
    assert len(reports) == 1
    assert str(tmp_path / "big.jpg") in reports[0]
    assert len(good) == 3


def test_skipped_file_report_keeps_the_path_whole(tmp_path):
    deep = tmp_path.joinpath(*["a_rather_long_folder_name"] * 4)
    write_image(deep / "good.png")
    (deep / "bad.jpg").write_text("not a JPEG")
    lines = []
    dl.load_data(tmp_path, resolution=8, log=lines.append)
    report = next(line for line in lines if "skipped 1 unreadable" in line)
    bad = str(deep / "bad.jpg")
    assert f"{bad} (UnidentifiedImageError: cannot identify image file)" in report
    assert report.count(str(deep)) == 1  # the error text does not repeat (or cut) the path


def test_all_corrupt_is_a_no_images_error(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.png").write_text("nope")
    with pytest.raises(dl.DataError, match="no readable images.*all 2 files"):
        dl.load_data(tmp_path, resolution=8, log=quiet)


def test_image_modes_become_rgb(tmp_path):
    paths = {}
    Image.new("L", (10, 10), 77).save(tmp_path / "gray.png")
    paths["gray"] = (77, 77, 77)
    Image.new("RGBA", (10, 10), (200, 100, 50, 255)).save(tmp_path / "rgba.png")
    paths["rgba"] = (200, 100, 50)
    Image.new("RGBA", (10, 10), (200, 100, 50, 0)).save(tmp_path / "clear.png")
    paths["clear"] = (0, 0, 0)                       # transparent -> black background
    pal = Image.new("P", (10, 10), 1)
    pal.putpalette([0, 0, 0, 30, 140, 220] + [0] * 762)
    pal.save(tmp_path / "palette.png")
    paths["palette"] = (30, 140, 220)
    Image.fromarray(np.full((10, 10), 32896, np.uint16)).save(tmp_path / "gray16.png")
    paths["gray16"] = (128, 128, 128)                # 32896 / 257 = 128, not clipped to 255
    Image.new("LA", (10, 10), (90, 255)).save(tmp_path / "la.png")
    paths["la"] = (90, 90, 90)
    Image.new("CMYK", (10, 10), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg")
    paths["cmyk"] = (255, 255, 255)
    Image.new("RGB", (10, 10), (5, 250, 9)).save(tmp_path / "rgb.bmp")
    paths["rgb"] = (5, 250, 9)
    for name, expected in paths.items():
        path = next(str(p) for p in tmp_path.iterdir() if p.stem == name)
        out = dl.decode_image(path, 6)
        assert out.shape == (6, 6, 3) and out.dtype == np.uint8, name
        assert np.abs(out.astype(int) - expected).max() <= 2, (name, out[0, 0])


def hand_made_60x45(tmp_path):
    """A 60 x 45 (W x H) image whose every column has its own colour: column x is
    (4x, 255 - 4x, 100), every row the same."""
    a = np.zeros((45, 60, 3), np.uint8)
    a[:, :, 0] = 4 * np.arange(60)
    a[:, :, 1] = 255 - 4 * np.arange(60)
    a[:, :, 2] = 100
    path = tmp_path / "wide.png"
    Image.fromarray(a).save(path)
    return path, a


def test_center_is_resize_short_side_then_centre_crop(tmp_path):
    """DCGAN's preprocessing (torchvision Resize(R) + CenterCrop(R)) on a non-square image."""
    path, a = hand_made_60x45(tmp_path)
    # R = 45: the shorter side is already 45, so no resampling; the crop's left edge is
    # int(round((60 - 45) / 2)) = round(7.5) = 8 (Python rounds half to even), so the
    # expected image is columns 8..52 of the original, exactly.
    got = dl.decode_image(str(path), 45, crop="center")
    np.testing.assert_array_equal(got, a[:, 8:53])
    # R = 15: the shorter side 45 -> 15, the longer 60 -> int(15 * 60 / 45) = 20, bilinear;
    # then columns int(round(2.5)) = 2 .. 16 of that. Built here with PIL directly.
    resized = np.asarray(Image.fromarray(a).resize((20, 15), Image.Resampling.BILINEAR))
    got = dl.decode_image(str(path), 15, crop="center")
    np.testing.assert_array_equal(got, resized[:, 2:17])
    # cropping the centred square first and resizing it after is a different image
    square = np.asarray(Image.fromarray(a[:, 7:52]).resize((15, 15),
                                                           Image.Resampling.BILINEAR))
    assert not np.array_equal(got, square)


def test_resize_squashes_the_whole_image(tmp_path):
    path, _ = hand_made_60x45(tmp_path)
    squashed = dl.decode_image(str(path), 8, crop="resize")
    assert squashed[:, 0, 0].max() < 30 and squashed[:, -1, 0].min() > 200   # both ends kept


def test_jpeg_decode_matches_full_decode(tmp_path):
    """Draft-mode decoding must give about the same image as a full decode + resize."""
    from skingan.demo_data import render_lesion
    lesion = render_lesion(np.random.default_rng(1), 450, 600)                # 600 x 450
    Image.fromarray(lesion).save(tmp_path / "x.jpg", quality=90)
    for crop in ("resize", "center"):
        fast = dl.decode_image(str(tmp_path / "x.jpg"), 32, crop).astype(float)
        with Image.open(tmp_path / "x.jpg") as img:
            if crop == "center":   # 600 x 450 -> 42 x 32, then columns 5 .. 36
                img = img.resize((42, 32), Image.Resampling.BILINEAR).crop((5, 0, 37, 32))
            else:
                img = img.resize((32, 32), Image.Resampling.LANCZOS)
            slow = np.asarray(img).astype(float)
        # The centred square is cut from the draft-scale image, so it can sit up to half a
        # draft pixel off the full-size square: a little more difference is expected there.
        assert np.abs(fast - slow).mean() < (1.0 if crop == "resize" else 1.5), crop
        assert np.abs(fast - slow)[1:-1, 1:-1].max() < 24, crop


def test_cache_file_is_reused_without_decoding(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for i in range(4):
        write_image(data / f"{i}.png", color=(i * 40, 20, 30), fmt="PNG")
    (data / "bad.jpg").write_bytes(b"")
    cache = tmp_path / "cache"
    first, d1 = dl.load_data(data, resolution=8, cache_dir=cache, log=quiet)
    assert len(list(cache.glob("*.npy"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although cached")
    monkeypatch.setattr(decode, "decode_image", no_decoding)
    lines = []
    second, d2 = dl.load_data(data, resolution=8, cache_dir=cache, log=lines.append)
    assert isinstance(second, np.memmap)
    assert np.array_equal(first, second)
    assert d2 == d1 and d2["num_skipped"] == 1
    assert any("cached" in line for line in lines)

    # A changed file changes the key: decoding is attempted (and here fails for every file).
    write_image(data / "0.png", color=(1, 2, 3), size=(13, 10), fmt="PNG")
    with pytest.raises(dl.DataError, match="no readable images"):
        dl.load_data(data, resolution=8, cache_dir=cache, log=quiet)


def test_load_data_description(tmp_path):
    make_isic(tmp_path, ISIC_LABELS)
    images, description = dl.load_data(tmp_path, class_name="nv", resolution=16, crop="center",
                                       log=quiet)
    assert images.shape == (3, 16, 16, 3) and images.dtype == np.uint8
    assert description == {
        "path": str(tmp_path), "labels": str(tmp_path / "ISIC2018_Task3_Training_GroundTruth"
                                             / "ISIC2018_Task3_Training_GroundTruth.csv"),
        "layout": "isic2018", "class": "NV", "num_images": 3, "num_skipped": 0,
        "resolution": 16, "crop": "center", "num_excluded": 0,
        "image_ids": ["ISIC_0000002", "ISIC_0000004", "ISIC_0000006"]}


# ----------------------------------------------------------------------------------------------
# The stream
# ----------------------------------------------------------------------------------------------

def numbered_images(n, r=4):
    """Image k is filled with the value k (k < 256): its identity can be read back."""
    return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None],
                           (n, r, r, 3)).copy()


def take(ds, k):
    return [b.numpy() for b in ds.take(k)]


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_stream_shape_dtype_range(value_range):
    images = np.zeros((5, 8, 8, 3), np.uint8)
    images[:, :4] = 255
    (batch,) = take(dl.make_dataset(images, 4, value_range=value_range), 1)
    assert batch.shape == (4, 8, 8, 3) and batch.dtype == np.float32
    assert batch.min() == value_range[0] and batch.max() == value_range[1]
    assert set(np.unique(batch)) == set(value_range)


def test_stream_value_mapping_is_linear():
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    (batch,) = take(dl.make_dataset(images, 1, value_range=(-1.0, 1.0), hflip=False), 1)
    np.testing.assert_allclose(batch[0, ..., 0].ravel(), np.arange(256) / 127.5 - 1, atol=1e-6)


def test_one_epoch_visits_every_image_once():
    images = numbered_images(12)
    batches = take(dl.make_dataset(images, 4, seed=3, hflip=False), 6)   # two epochs
    ids = np.concatenate([np.round(b[:, 0, 0, 0] * 255).astype(int) for b in batches])
    assert sorted(ids[:12]) == list(range(12))
    assert sorted(ids[12:]) == list(range(12))
    assert list(ids[:12]) != list(ids[12:])         # a new order each epoch
    assert list(ids[:12]) != list(range(12))        # shuffled


def test_same_seed_same_batches_different_seed_different():
    images = np.random.default_rng(0).integers(0, 256, (10, 6, 6, 3), dtype=np.uint8)
    a = take(dl.make_dataset(images, 4, seed=5, vflip=True, rot90=True), 5)
    b = take(dl.make_dataset(images, 4, seed=5, vflip=True, rot90=True), 5)
    c = take(dl.make_dataset(images, 4, seed=6, vflip=True, rot90=True), 5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize("n, batch_size", [(10, 4), (3, 8)])     # straddling; N < B
def test_start_step_continues_the_stream(n, batch_size):
    images = np.random.default_rng(1).integers(0, 256, (n, 6, 6, 3), dtype=np.uint8)
    kwargs = dict(seed=7, value_range=(-1.0, 1.0), vflip=True, rot90=True)
    full = take(dl.make_dataset(images, batch_size, **kwargs), 9)
    for k in (1, 4, 7):
        resumed = take(dl.make_dataset(images, batch_size, start_step=k, **kwargs), 9 - k)
        for x, y in zip(resumed, full[k:]):
            np.testing.assert_array_equal(x, y)


def test_start_step_far_away_is_cheap_and_exact():
    images = numbered_images(50, r=2)
    # 8 epochs of 50 images are exactly 25 batches of 16; start at a far step on a boundary
    step = 25 * 12_000
    batches = take(dl.make_dataset(images, 16, seed=2, hflip=False, start_step=step), 25)
    order = np.round(np.concatenate(batches)[:, 0, 0, 0] * 255).astype(int)   # 400 ids
    epochs = order.reshape(8, 50)
    for epoch in epochs:                     # every epoch shows every image exactly once
        assert sorted(epoch) == list(range(50))
    assert len({tuple(e) for e in epochs}) == 8      # each epoch in its own order
    first = np.round(take(dl.make_dataset(images, 50, seed=2, hflip=False), 1)[0]
                     [:, 0, 0, 0] * 255).astype(int)
    assert not np.array_equal(first, epochs[0])      # far epochs are not epoch 0 again


def test_augmentations():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (8, 5, 5, 3), dtype=np.uint8)
    plain = dl.make_batch(images, 0, 8, seed=1, hflip=False)
    # without augmentation a batch of N = B is the images themselves, in some order
    assert sorted(map(bytes, plain)) == sorted(map(bytes, images))
    # The 8 symmetries of the square (4 rotations of the image and of its mirror), per image.
    symmetries = [[np.rot90(v, t) for v in (img, img[:, ::-1]) for t in range(4)]
                  for img in images]
    flipped, used = 0, set()
    for step in range(20):
        index, _ = dl.batch_indices(step, 8, 8, 1)
        batch = dl.make_batch(images, step, 8, seed=1)                   # hflip only
        for img, k in zip(batch, index):
            if np.array_equal(img, images[k][:, ::-1]):
                flipped += 1
            else:
                assert np.array_equal(img, images[k])
        batch = dl.make_batch(images, step, 8, seed=1, hflip=True, vflip=True, rot90=True)
        for img, k in zip(batch, index):
            matches = [s for s, sym in enumerate(symmetries[k]) if np.array_equal(img, sym)]
            assert matches, "not a symmetry of the source image"
            used.add(matches[0])
    assert 50 < flipped < 110                                            # about half of 160
    assert len(used) == 8                                                # all of them occur


@pytest.mark.slow
def test_mirrored_strategy_splits_batches():
    """experimental_distribute_dataset on two logical CPUs: the replicas' halves put together
    are the single-device batch. Then the script ends while both iterators are alive and
    their buffers are being refilled by slow batches: it must exit, not hang in the
    iterators' destructors (docs/bench-hang.md; without data_loader.ExitGate it hangs)."""
    code = textwrap.dedent("""
        import time
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import data_loader as dl
        images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        ds = dl.make_dataset(images, 4, seed=1, start_step=3)
        dist = iter(strategy.experimental_distribute_dataset(ds))
        plain = iter(ds)
        for _ in range(3):
            parts = strategy.experimental_local_results(next(dist))
            assert [p.shape[0] for p in parts] == [2, 2], [p.shape for p in parts]
            together = np.concatenate([p.numpy() for p in parts])
            assert np.array_equal(together, next(plain).numpy())
        fast = dl.make_batch
        def slow(*args, **kwargs):      # refills still running when the script ends
            time.sleep(0.3)
            return fast(*args, **kwargs)
        dl.make_batch = slow
        next(dist), next(plain)
        print("MIRRORED-OK", flush=True)
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-c", code], cwd=root, env=env,
                            capture_output=True, text=True, timeout=180)
    assert "MIRRORED-OK" in result.stdout, result.stderr[-3000:]
    assert result.returncode == 0, result.stderr[-3000:]


def test_exit_gate_waits_for_the_calls_in_flight():
    """At exit the gate holds the interpreter until the stream's Python calls (on tf.data's
    threads) have returned: a call cut off by the shutdown would never return, and the
    iterator's destructor would wait for it forever (docs/bench-hang.md)."""
    import threading
    import time
    gate = dl.ExitGate(quiet_s=0.05, limit_s=10)
    finished = []

    def batch_call():
        with gate.call():
            time.sleep(0.4)
            finished.append(time.monotonic())

    worker = threading.Thread(target=batch_call)
    worker.start()
    time.sleep(0.1)                                   # the call is in flight
    assert gate.close() and finished and time.monotonic() - finished[0] >= 0.05
    worker.join()
    # nothing in flight: it returns after the quiet time; a call that never ends: after limit_s
    assert dl.ExitGate(quiet_s=0.01, limit_s=1).close()
    stuck = dl.ExitGate(quiet_s=0.01, limit_s=0.2)
    with stuck.call():
        assert not stuck.close()
    assert dl.exit_gate() is dl.exit_gate()           # one per process, registered once
