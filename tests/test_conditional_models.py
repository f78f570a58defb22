"""Class-conditional builders (an option beyond the papers): the class changes G's output
and D's logit, and the conditional parts are the only new parameters (the unconditional
networks' counts, the authors', are tested in test_sl_stylegan.py and test_dcgan.py)."""
import numpy as np
import pytest

import dcgan
import SL_StyleGAN


def count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_conditional_parts_are_the_only_new_parameters():
    k = 7
    # SL-StyleGAN: a (k, 512) class embedding, the first mapping layer reading 100 + 512
    # inputs instead of 100, and D's (k, 128) projection embedding
    g = count(SL_StyleGAN.build_generator(32, num_classes=k))
    assert g - 5_389_715 == k * 512 + 512 * 512
    assert count(SL_StyleGAN.build_discriminator(32, num_classes=k)) - 203_409 == k * 128
    # DCGAN: a (k, 100) embedding, the first ConvTranspose reading 200 channels instead of
    # 100 (4 x 4 x 100 x 512 more), and D's (k, 4 * 4 * 512) projection embedding
    assert count(dcgan.build_generator(64, num_classes=k)) - 3_576_704 == \
        k * 100 + 4 * 4 * 100 * 512
    assert count(dcgan.build_discriminator(64, num_classes=k)) - 2_765_568 == k * 4 * 4 * 512


@pytest.mark.parametrize("family", ["sl-stylegan", "dcgan"])
def test_the_class_changes_g_output_and_d_logit(family):
    import keras
    keras.utils.set_random_seed(0)
    rs = np.random.RandomState(0)
    z = rs.standard_normal((2, 100)).astype("float32")
    z = np.concatenate([z[:1], z[:1]])                    # the same latent twice
    labels = np.array([0, 2], "int32")                    # two different classes
    if family == "sl-stylegan":
        g = SL_StyleGAN.build_generator(16, channel_scale=0.125, num_classes=3)
        d = SL_StyleGAN.build_discriminator(16, channel_scale=0.125, dropout=0.0,
                                            num_classes=3)
        noise = np.repeat(rs.standard_normal((1, 16, 16, 1)).astype("float32"), 2, axis=0)
        images = g([z, noise, labels]).numpy()
    else:
        g = dcgan.build_generator(16, base_filters=4, num_classes=3)
        d = dcgan.build_discriminator(16, base_filters=4, num_classes=3)
        images = g([z, labels], training=False).numpy()
    assert images.shape == (2, 16, 16, 3)
    assert np.abs(images[0] - images[1]).max() > 1e-4     # class alone changed the image
    same = np.repeat(images[:1], 2, axis=0)
    logits = d([same, labels], training=False).numpy()
    assert logits.shape == (2, 1)
    # the projection embedding starts random, so two classes score the same image apart
    assert not np.isclose(logits[0, 0], logits[1, 0])


def test_conditional_models_save_and_load(tmp_path):
    import keras
    g = SL_StyleGAN.build_generator(16, channel_scale=0.125, num_classes=2)
    path = str(tmp_path / "g.keras")
    g.save(path)
    again = keras.models.load_model(path, compile=False)
    z = np.zeros((1, 100), "float32") + 0.5
    noise = np.zeros((1, 16, 16, 1), "float32")
    label = np.array([1], "int32")
    np.testing.assert_allclose(again([z, noise, label]), g([z, noise, label]), atol=1e-6)
