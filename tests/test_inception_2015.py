"""--fid-network inception-2015: the loader and feature path on a tiny stand-in SavedModel
with the TF-GAN module's signature (float (N, 299, 299, 3) in [-1, 1] -> {"logits",
"pool_3"}). Nothing is downloaded."""
import os

import numpy as np
import pytest
import tensorflow as tf

from skingan import metrics
from skingan.errors import UserError


class StandIn(tf.Module):
    """pool_3 (N, 1, 1, 2048): each of the 2048 outputs is the image's mean value times
    (k + 1) / 2048, so the test can read back what the module was fed."""

    @tf.function(input_signature=[tf.TensorSpec([None, 299, 299, 3], tf.float32)])
    def __call__(self, images):
        mean = tf.reduce_mean(images, axis=[1, 2, 3])                        # (N,)
        scale = tf.range(1, 2049, dtype=tf.float32) / 2048.0                  # (2048,)
        pool = mean[:, None] * scale[None, :]
        return {"logits": tf.zeros([tf.shape(images)[0], 1008]),
                "pool_3": tf.reshape(pool, [-1, 1, 1, 2048])}


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("inception_2015") / "saved")
    tf.saved_model.save(StandIn(), folder)
    return folder


def test_loader_reads_a_local_savedmodel_and_features_follow_its_convention(stand_in):
    net = metrics.load_inception_2015(stand_in, download=False)
    assert net.name == "inception-2015" and net.input_shape[1:3] == (299, 299)
    images = np.stack([np.full((32, 32, 3), v, np.uint8) for v in (0, 255, 51)])
    feats = metrics.extract_features(images, net, batch_size=2, log=None)
    assert feats.shape == (3, 2048)
    # 0 -> -1, 255 -> +1, 51 -> 51 / 127.5 - 1: the [-1, 1] convention, after the resize
    np.testing.assert_allclose(feats[:, -1], [-1.0, 1.0, 51 / 127.5 - 1], atol=1e-5)
    np.testing.assert_allclose(feats[2, :4], (51 / 127.5 - 1) * np.arange(1, 5) / 2048,
                               atol=1e-6)


def test_the_environment_variable_names_the_folder(stand_in, monkeypatch):
    monkeypatch.setenv(metrics.INCEPTION_2015_ENV, stand_in)
    assert metrics.inception_2015_path(download=False) == stand_in


def test_missing_module_offline_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.delenv(metrics.INCEPTION_2015_ENV, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(UserError, match="tfgan/eval/inception/1.*unpack it into"):
        metrics.inception_2015_path(download=False)
    with pytest.raises(UserError, match="no SavedModel"):
        metrics.inception_2015_path(str(tmp_path), download=False)

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")
    import keras
    monkeypatch.setattr(keras.utils, "get_file", no_network)
    with pytest.raises(UserError, match="cannot download the 2015 Inception.*unreachable"):
        metrics.inception_2015_path(download=True, log=None)
    assert not os.path.exists(tmp_path / "keras" / "models" / "tfgan_eval_inception_1")
