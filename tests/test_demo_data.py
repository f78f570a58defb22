"""Tests of demo_data: deterministic synthetic lesions, written once and atomically."""
import os

import numpy as np
import pytest
from PIL import Image

import data_loader
from skingan import demo_data
from skingan.errors import UserError
from conftest import quiet




def image_files(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith((".png", ".jpg")))


def test_writes_the_count_asked_and_the_loader_reads_them(tmp_path):
    root = tmp_path / "demo"
    path = demo_data.ensure_demo_data(str(root), n=7, size=32, log=quiet)
    assert path == str(root)
    assert image_files(root) == [f"demo_{i:04d}.png" for i in range(7)]
    assert os.path.exists(root / demo_data.MARKER)
    with Image.open(root / "demo_0003.png") as img:
        assert img.size == (32, 32) and img.mode == "RGB"
    images, description = data_loader.load_data(root, resolution=16, log=quiet)
    assert images.shape == (7, 16, 16, 3)
    assert description["layout"] == "folder" and description["num_skipped"] == 0


def test_deterministic_bytes_and_seed_dependent(tmp_path):
    a = demo_data.ensure_demo_data(str(tmp_path / "a"), n=4, size=32, seed=3, log=quiet)
    b = demo_data.ensure_demo_data(str(tmp_path / "b"), n=4, size=32, seed=3, log=quiet)
    c = demo_data.ensure_demo_data(str(tmp_path / "c"), n=4, size=32, seed=4, log=quiet)
    for name in image_files(a):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()
    # Image i depends on (seed, i) only, not on how many are drawn.
    assert np.array_equal(demo_data.demo_image(2, 32, seed=3),
                          np.asarray(Image.open(os.path.join(a, "demo_0002.png"))))


def test_images_look_like_lesions():
    for i in range(8):
        img = demo_data.demo_image(i, 64).astype(float)
        assert img.shape == (64, 64, 3)
        luminance = img.mean(axis=2)
        skin = luminance[luminance > 20]                   # leave out the black vignette
        centre = luminance[24:40, 24:40].mean()
        assert centre < np.median(skin) - 15, i            # a darker lesion near the middle
        assert img[..., 0].mean() > img[..., 2].mean()     # skin and pigment are reddish
        assert luminance.std() > 10                        # not a flat image


def test_reuses_a_complete_set(tmp_path):
    root = str(tmp_path / "demo")
    demo_data.ensure_demo_data(root, n=3, size=16, log=quiet)
    stamp = os.path.getmtime(os.path.join(root, "demo_0000.png"))
    lines = []
    demo_data.ensure_demo_data(root, n=3, size=16, log=lines.append)
    assert lines == []                                      # nothing written
    assert os.path.getmtime(os.path.join(root, "demo_0000.png")) == stamp


def test_other_settings_replace_the_set(tmp_path):
    root = str(tmp_path / "demo")
    demo_data.ensure_demo_data(root, n=5, size=16, log=quiet)
    demo_data.ensure_demo_data(root, n=2, size=16, log=quiet)
    assert image_files(root) == ["demo_0000.png", "demo_0001.png"]


def test_interrupted_write_is_not_complete(tmp_path, monkeypatch):
    root = str(tmp_path / "demo")

    def crash(folder, *args, **kwargs):
        Image.new("RGB", (8, 8)).save(os.path.join(folder, "demo_0000.png"))
        raise KeyboardInterrupt
    monkeypatch.setattr(demo_data, "write_demo_images", crash)
    with pytest.raises(KeyboardInterrupt):
        demo_data.ensure_demo_data(root, n=3, size=16, log=quiet)
    assert not os.path.exists(root)                         # nothing half-written in place
    assert os.listdir(tmp_path) == []                       # temporary folder removed
    monkeypatch.undo()
    demo_data.ensure_demo_data(root, n=3, size=16, log=quiet)
    assert len(image_files(root)) == 3


def test_never_overwrites_a_user_folder(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "precious.jpg").write_bytes(b"user data")
    with pytest.raises(UserError, match="not a demo image folder"):
        demo_data.ensure_demo_data(str(root), n=2, size=16, log=quiet)
    assert (root / "precious.jpg").read_bytes() == b"user data"


def test_cli(tmp_path, capsys):
    demo_data.main(["--out", str(tmp_path / "cli"), "--n", "2", "--size", "16",
                    "--format", "jpg"])
    assert image_files(tmp_path / "cli") == ["demo_0000.jpg", "demo_0001.jpg"]
    with pytest.raises(SystemExit) as info:
        demo_data.main(["--help"])
    assert info.value.code == 0
    assert "--out" in capsys.readouterr().out
