"""Pretrained weights as Keras fetches them (skingan.pretrained), for both kinds: InceptionV3
(FID) and the classifier backbones. Nothing here downloads: the suite runs offline
(conftest.py), and the one online path runs against a stand-in for keras.utils.get_file."""
import os

import pytest

import classify
from skingan import metrics, pretrained
from skingan.benefit import backbones
from skingan.errors import UserError, run_cli

SPECS = [pretrained.INCEPTION_V3, pretrained.EFFICIENTNET_B0, pretrained.RESNET50,
         pretrained.DENSENET121, pretrained.MOBILENET_V3_SMALL]


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras home (KERAS_HOME) in a temporary folder."""
    home = tmp_path / "keras"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def stand_in(home, spec):
    """A tiny file where Keras' cache keeps ``spec``'s weights (the lookup checks presence)."""
    path = home / "models" / spec.file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"stand-in")
    return str(path)


def test_the_suite_runs_offline():
    assert os.environ["SKINGAN_OFFLINE"] == "1" and pretrained.offline()


@pytest.mark.parametrize("value, off", [("1", True), ("yes", True), ("0", False),
                                        ("", False), ("false", False)])
def test_offline_reads_the_environment(monkeypatch, value, off):
    monkeypatch.setenv(pretrained.OFFLINE_ENV, value)
    assert pretrained.offline() is off


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.network)
def test_a_file_in_keras_cache_is_found(keras_home, spec):
    path = stand_in(keras_home, spec)
    assert pretrained.fetch(spec, log=None) == path


def test_offline_without_the_file_is_one_line_naming_file_and_folder(keras_home):
    with pytest.raises(pretrained.MissingWeightsError) as err:
        pretrained.fetch(pretrained.EFFICIENTNET_B0, log=None)
    message = str(err.value)
    assert "\n" not in message
    assert "downloads are off (--offline or SKINGAN_OFFLINE=1)" in message
    assert f"put efficientnetb0_notop.h5 (from {pretrained.EFFICIENTNET_B0.origin}) in " \
           f"{keras_home / 'models'}/" in message
    assert err.value.short() == (f"no efficientnetb0_notop.h5 in {keras_home / 'models'}/ "
                                 "(downloads are off: --offline or SKINGAN_OFFLINE=1)")


def test_online_downloads_through_keras_get_file_into_the_cache(keras_home, monkeypatch):
    import keras
    monkeypatch.setenv(pretrained.OFFLINE_ENV, "0")
    calls = []

    def get_file(fname, origin, cache_subdir, file_hash, cache_dir):
        calls.append((fname, origin, cache_subdir, file_hash, cache_dir))
        return stand_in(keras_home, pretrained.RESNET50)

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    logged = []
    path = pretrained.fetch(pretrained.RESNET50, log=logged.append)
    assert path == str(keras_home / "models" / pretrained.RESNET50.file_name)
    assert calls == [(pretrained.RESNET50.file_name, pretrained.RESNET50.origin, "models",
                      pretrained.RESNET50.md5, str(keras_home))]
    assert len(logged) == 1 and logged[0].startswith("downloading ResNet50's ImageNet weights")
    # found in the cache next time: no second download
    assert pretrained.fetch(pretrained.RESNET50, log=logged.append) == path
    assert len(calls) == 1


def test_no_network_is_one_line_not_a_traceback(keras_home, monkeypatch):
    import keras
    monkeypatch.setenv(pretrained.OFFLINE_ENV, "0")

    def get_file(*args, **kwargs):      # what Keras raises without a network
        raise Exception("URL fetch failure on https://x: None -- [Errno -3] Temporary "
                        "failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    with pytest.raises(pretrained.MissingWeightsError) as err:
        pretrained.fetch(pretrained.INCEPTION_V3, log=None, flag="--inception-weights")
    message = str(err.value)
    assert message.startswith("cannot download InceptionV3's ImageNet weights (URL fetch "
                              "failure")
    assert pretrained.INCEPTION_V3.file_name in message and "--inception-weights FILE" in message
    assert "\n" not in message


@pytest.mark.slow
@pytest.mark.parametrize("spec, size", [(pretrained.INCEPTION_V3, 75),
                                        (pretrained.EFFICIENTNET_B0, 32),
                                        (pretrained.RESNET50, 32),
                                        (pretrained.DENSENET121, 32),
                                        (pretrained.MOBILENET_V3_SMALL, 32)],
                         ids=lambda s: getattr(s, "network", str(s)))
def test_the_table_is_what_keras_itself_fetches(monkeypatch, spec, size):
    """Each constructor with weights='imagenet' asks Keras' get_file for our file name, URL
    and hash (stopped there: nothing is downloaded)."""
    import keras
    from keras.src.utils import file_utils
    asked = []

    class Stop(Exception):
        pass

    def get_file(fname, origin, cache_subdir=None, file_hash=None, **kwargs):
        asked.append((fname, origin, cache_subdir, file_hash))
        raise Stop

    monkeypatch.setattr(file_utils, "get_file", get_file)
    with pytest.raises(Stop):
        getattr(keras.applications, spec.network)(include_top=False, weights="imagenet",
                                                   input_shape=(size, size, 3))
    assert asked == [(spec.file_name, spec.origin, "models", spec.md5)]


# ------------------------------------------------------------------ the two kinds of network

def test_inception_offline_is_a_short_reason_and_compute_all_skips(keras_home):
    import numpy as np
    with pytest.raises(metrics.MissingWeightsError) as err:
        metrics.load_inception()
    assert metrics.INCEPTION_WEIGHTS_FILE in err.value.short()
    images = np.random.default_rng(0).integers(0, 255, (20, 16, 16, 3), dtype=np.uint8)
    logged = []
    result = metrics.compute_all(images[:10], images[10:], log=logged.append)
    assert result["fid"] is None and np.isfinite(result["swd"]["average"])
    assert result["skipped"] == ("FID, KID, precision and recall skipped: "
                                 f"no {metrics.INCEPTION_WEIGHTS_FILE} in "
                                 f"{keras_home / 'models'}/ (downloads are off: --offline or "
                                 "SKINGAN_OFFLINE=1)")
    assert logged[0] == result["skipped"]


def test_inception_from_the_cache_reaches_the_keras_constructor(keras_home, monkeypatch):
    import keras
    path = stand_in(keras_home, pretrained.INCEPTION_V3)
    seen = {}

    def constructor(**kwargs):
        seen.update(kwargs)
        return "model"

    monkeypatch.setattr(keras.applications, "InceptionV3", constructor)
    assert metrics.load_inception() == "model"
    assert seen["weights"] == path and seen["include_top"] is False


def test_backbone_offline_names_the_file_and_the_way_out(keras_home):
    with pytest.raises(pretrained.MissingWeightsError) as err:
        backbones.find_weights("densenet121", None, log=None)
    message = str(err.value)
    assert pretrained.DENSENET121.file_name in message
    assert "--weights FILE (--weights none: random initialisation" in message


def test_backbone_weights_choices(keras_home, tmp_path):
    logged = []
    path = stand_in(keras_home, pretrained.MOBILENET_V3_SMALL)
    assert backbones.find_weights("mobilenetv3small", "imagenet", logged.append) == path
    assert backbones.find_weights("mobilenetv3small", None, logged.append) == path
    assert backbones.find_weights("resnet50", "none", logged.append) is None
    assert logged[-1] == "resnet50: random initialisation (--weights none), no ImageNet weights"
    assert backbones.find_weights("resnet50", path, logged.append) == path
    assert backbones.find_weights("small", None) is None
    with pytest.raises(UserError, match="the small CNN has no pretrained weights"):
        backbones.find_weights("small", "imagenet")
    with pytest.raises(UserError, match="--weights: file not found"):
        backbones.find_weights("resnet50", str(tmp_path / "nowhere.h5"))


def test_classify_offline_without_weights_exits_2_and_leaves_no_folder(
        keras_home, tmp_path, demo_set, capsys):
    fake = tmp_path / "fake"
    fake.mkdir()
    from PIL import Image
    for i in range(4):
        Image.new("RGB", (32, 32), (0, 255, 0)).save(fake / f"f{i}.png")
    results = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        run_cli(classify.main, ["--data", demo_set, "--synthetic", f"df={fake}",
                                "--backbone", "efficientnetb0", "--resolution", "32",
                                "--name", "w", "--results-dir", str(results),
                                "--cache-dir", "none"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert len(err.splitlines()) == 1
    assert err.startswith("error: EfficientNetB0's ImageNet weights are not in Keras' cache")
    assert not results.exists()
