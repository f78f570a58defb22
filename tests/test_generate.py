"""skingan.sampling (generate.py's library API) on exported generators: seeds, truncation, refusals."""

import numpy as np
import pytest

import dcgan
import SL_StyleGAN
from skingan import sampling
from skingan.errors import UserError


@pytest.fixture(scope="module")
def stylegan_file(tmp_path_factory):
    import keras
    keras.utils.set_random_seed(0)
    g = SL_StyleGAN.build_generator(16, channel_scale=0.125)
    path = str(tmp_path_factory.mktemp("g") / "generator.keras")
    g.save(path)
    return path


def all_images(bundle, n, **kw):
    return np.concatenate([b for _, b in sampling.generate_images(bundle, n, **kw)])


def test_each_image_depends_only_on_its_seed(stylegan_file):
    bundle = sampling.load_generator(stylegan_file)
    assert bundle.uses_noise and bundle.resolution == 16 and bundle.value_range == (0.0, 1.0)
    a = all_images(bundle, 6, seed=10, batch_size=4)
    b = all_images(bundle, 3, seed=13, batch_size=1)
    assert a.shape == (6, 16, 16, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a[3:], b)
    assert not np.array_equal(a[0], a[1])


@pytest.mark.slow
def test_truncation_psi_one_is_identity_and_zero_collapses_styles(stylegan_file):
    bundle = sampling.load_generator(stylegan_file)
    plain = all_images(bundle, 4, seed=0)
    same = all_images(bundle, 4, seed=0, truncation=1.0)
    assert np.max(np.abs(plain.astype(int) - same.astype(int))) <= 1  # float rounding only
    # psi = 0 gives every image the mean style; only the noise still differs
    mapping = SL_StyleGAN.get_mapping(bundle.model)
    z, noise = sampling.latent_inputs(bundle, [0, 1])
    # the centre written out here: the mean of w over 10,000 latents from seed 0
    w_avg = mapping(np.random.RandomState(0).standard_normal((10000, 100))
                    .astype("float32")).numpy().mean(axis=0)
    synthesis = SL_StyleGAN.get_synthesis(bundle.model)
    expected = synthesis([np.stack([w_avg, w_avg]), noise]).numpy()
    got = all_images(bundle, 2, seed=0, truncation=0.0)
    np.testing.assert_allclose(got / 255.0, expected, atol=1 / 255.0 + 1e-6)
    assert mapping(z).shape == (2, 512)


def test_dcgan_export_and_refusals(tmp_path):
    g = dcgan.build_generator(16, base_filters=4)
    path = str(tmp_path / "g.keras")
    g.save(path)
    bundle = sampling.load_generator(path)
    assert not bundle.uses_noise and bundle.value_range == (-1.0, 1.0)
    assert all_images(bundle, 2).shape == (2, 16, 16, 3)
    with pytest.raises(UserError, match="style-based"):
        all_images(bundle, 2, truncation=0.5)
    with pytest.raises(UserError, match="--n must be positive"):
        all_images(bundle, 0)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot load generator"):
        sampling.load_generator(str(broken))
