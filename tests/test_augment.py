"""DiffAugment transforms: exact on chosen parameters, differentiable, and refused when
unknown."""
import math

import numpy as np
import pytest
import tensorflow as tf

from skingan import augment
from skingan.config import AUGMENT_POLICIES, parse_augment
from skingan.errors import UserError


def images(b=2, size=16):
    return tf.constant(np.random.RandomState(0).uniform(0.2, 0.8, (b, size, size, 3)),
                       tf.float32)


def test_color_at_the_midpoint_is_the_identity():
    x = images()
    params = {"color": tf.fill([2, 3], 0.5)}  # brightness +0, saturation x1, contrast x1
    np.testing.assert_allclose(augment.apply(x, params, (0.0, 1.0)), x, atol=1e-6)


def test_brightness_shift_is_up_to_a_quarter_of_the_range():
    # DiffAugment: + U(-0.5, 0.5) on [-1, 1]; on [0, 1] that is U(-0.25, 0.25)
    x = images()
    params = {"color": tf.constant([[1.0, 0.5, 0.5], [0.0, 0.5, 0.5]])}
    out = augment.apply(x, params, (-1.0, 1.0)).numpy()
    np.testing.assert_allclose(out[0] - x[0], 0.5, atol=1e-6)
    np.testing.assert_allclose(out[1] - x[1], -0.5, atol=1e-6)
    out = augment.apply(x, params, (0.0, 1.0)).numpy()
    np.testing.assert_allclose(out[0] - x[0], 0.25, atol=1e-6)


def test_translation_moves_pixels_and_fills_with_the_range_midpoint():
    x = images()
    # u near 1 -> shift +H/8 = +2 rows and columns; u = 0.5 -> no shift
    params = {"translation": tf.constant([[0.999, 0.999], [0.5, 0.5]])}
    out = augment.apply(x, params, (-1.0, 1.0)).numpy()
    np.testing.assert_allclose(out[0, 2:, 2:], x[0, :-2, :-2], atol=1e-6)
    np.testing.assert_allclose(out[0, :2], 0.0)    # DiffAugment's zero of a [-1, 1] image
    np.testing.assert_allclose(out[0, :, :2], 0.0)
    np.testing.assert_allclose(out[1], x[1], atol=1e-6)


def test_cutout_blanks_a_quarter_of_the_image():
    x = images(size=16)
    params = {"cutout": tf.constant([[0.5, 0.5], [0.5, 0.5]])}
    out = augment.apply(x, params, (0.0, 1.0)).numpy()
    blank = np.all(out == 0.5, axis=-1)
    assert blank.sum(axis=(1, 2)).tolist() == [64, 64]       # 8 x 8 of 16 x 16
    assert blank[0, 4:12, 4:12].all()


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_translation_and_cutout_fill_with_the_midpoint_not_black(value_range):
    # The bug this catches: a fill at the range's low end paints a black frame or square
    # onto every image D sees (DiffAugment fills with mid-grey, the zeros of [-1, 1]).
    low, high = value_range
    mid = (low + high) / 2
    params = {"translation": tf.constant([[0.0, 0.999]] * 2),  # shift -2 rows, +2 columns
              "cutout": tf.constant([[0.0, 1.0], [0.5, 0.5]])}
    grey = augment.apply(tf.fill([2, 16, 16, 3], mid), params, value_range).numpy()
    np.testing.assert_array_equal(grey, mid)                     # mid-grey stays mid-grey
    white = augment.apply(tf.fill([2, 16, 16, 3], high), params, value_range).numpy()
    filled = white != high
    assert filled.any()
    np.testing.assert_array_equal(white[filled], mid)            # nothing goes black
    assert (white >= mid).all()


def test_translation_shifts_are_uniform_whole_pixels_within_an_eighth():
    # DiffAugment draws each shift as a uniform integer in [-size/8, size/8]: at 16 px, 5
    # values of probability 1/5 each (rounding a continuous shift would halve the end ones).
    u = tf.constant(np.linspace(0, 1, 1000, endpoint=False)[:, None].repeat(2, 1), tf.float32)
    x = tf.tile(tf.reshape(tf.range(16, dtype=tf.float32), [1, 1, 16, 1]), [1000, 16, 1, 3])
    out = augment.apply(x, {"translation": u}, (0.0, 16.0)).numpy()
    shift = out[:, 8, 8, 0] - 8.0                                # column read at the centre
    values, counts = np.unique(-shift, return_counts=True)
    assert values.tolist() == [-2, -1, 0, 1, 2]
    assert counts.tolist() == [200] * 5


def test_cutout_centres_cover_the_image_and_its_edges_uniformly():
    # DiffAugment: a whole-pixel centre uniform over [0, size] (size + 1 values for an even
    # square), the square clipped to the image, so corners are blanked as often as centres.
    n = 17 * 20
    u = tf.constant(np.linspace(0, 1, n, endpoint=False)[:, None].repeat(2, 1), tf.float32)
    out = augment.apply(tf.ones([n, 16, 16, 1]), {"cutout": u}, (0.0, 1.0)).numpy()
    blank = out[..., 0] == 0.5
    sizes = blank.sum(axis=(1, 2))
    assert sizes.max() == 64 and sizes.min() == 16               # 4 x 4 when centred on a corner
    np.testing.assert_array_equal(blank[:, 0, 0].sum(), blank[:, 15, 15].sum())


def test_colour_magnitudes_are_diffaugments():
    # DiffAugment on [-1, 1]: brightness + U(-0.5, 0.5), saturation x U(0, 2) about the pixel's
    # channel mean, contrast x U(0.5, 1.5) about the image mean; u = 0 and u -> 1 are the ends.
    x = images()
    rgb = lambda u: augment.apply(x, {"color": tf.constant([u, u], tf.float32)}, (-1.0, 1.0))
    np.testing.assert_allclose(rgb([0.0, 0.5, 0.5]) - x, -0.5, atol=1e-6)
    grey = rgb([0.5, 0.0, 0.5]).numpy()                          # saturation x 0: grey pixels
    np.testing.assert_allclose(grey, np.mean(x, axis=3, keepdims=True).repeat(3, 3), atol=1e-6)
    flat = rgb([0.5, 0.5, 0.0]).numpy()                          # contrast x 0.5
    mean = np.mean(x, axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(flat, (x - mean) * 0.5 + mean, atol=1e-6)
    twice = rgb([0.5, 1.0, 0.5]).numpy()                         # saturation x 2
    m = np.mean(x, axis=3, keepdims=True)
    np.testing.assert_allclose(twice, (x - m) * 2 + m, atol=1e-6)


def test_reals_and_fakes_see_the_same_transform_family():
    # The step draws one parameter set per batch D sees; all three must be the same policy
    # (same keys and shapes), drawn independently, and every transform applies to every image.
    from skingan import steps
    rng = tf.random.Generator.from_seed(3)
    draw, _ = steps._augmenter(rng, AUGMENT_POLICIES, (0.0, 1.0))
    params = draw(4, 16)
    assert set(params) == {"real", "fake_d", "fake_g"}
    for name in ("fake_d", "fake_g"):
        assert {k: v.shape for k, v in params[name].items()} == \
            {k: v.shape for k, v in params["real"].items()} == \
            {"color": (4, 3), "translation": (4, 2), "cutout": (4, 2)}
        assert not np.array_equal(params[name]["color"], params["real"]["color"])


def test_gradients_flow_through_every_transform():
    x = tf.Variable(images())
    rng = tf.random.Generator.from_seed(1)
    params = augment.draw_params(rng, 2, AUGMENT_POLICIES)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(augment.apply(x, params, (0.0, 1.0)) ** 2)
    grad = tape.gradient(y, x)
    assert grad is not None and np.count_nonzero(grad.numpy()) > 0


def test_policy_parsing():
    assert parse_augment("color, cutout") == ("color", "cutout")
    assert parse_augment("") == ()
    assert parse_augment("ada") == "ada"
    with pytest.raises(UserError, match="unknown augmentation flip"):
        parse_augment("color,flip")
    with pytest.raises(UserError, match="or 'ada' alone"):
        parse_augment("ada,color")



def test_every_transform_commutes_with_the_map_between_the_two_ranges():
    # A sigmoid family augments on [0, 1], a tanh family on [-1, 1]. With the same random
    # numbers, augmenting x in [0, 1] must equal mapping x to [-1, 1] (2x - 1), augmenting
    # there with DiffAugment's own magnitudes, and mapping back ((y + 1) / 2): brightness,
    # saturation, contrast, the translation's fill and the cutout's fill alike. (Issue 21
    # asked whether DiffAugment's grey samples on SL-StyleGAN come from a range mismatch.)
    x01 = tf.constant(np.random.RandomState(4).uniform(0, 1, (8, 16, 16, 3)), tf.float32)
    params = augment.draw_params(tf.random.Generator.from_seed(11), 8, AUGMENT_POLICIES)
    on01 = augment.apply(x01, params, (0.0, 1.0)).numpy()
    on11 = augment.apply(x01 * 2 - 1, params, (-1.0, 1.0)).numpy()
    np.testing.assert_allclose(on01, (on11 + 1) / 2, atol=1e-5)
    # and the colour statistics are DiffAugment's on both: the brightness shift's spread is
    # a quarter of the range either way (uniform: std = span / 2 / sqrt(12))
    flat = tf.fill([4096, 1, 1, 3], 0.5)
    shifted = augment.apply(flat, {"color": tf.stack([
        tf.random.stateless_uniform([4096], [1, 2]), tf.fill([4096], 0.5),
        tf.fill([4096], 0.5)], axis=1)}, (0.0, 1.0)).numpy()[:, 0, 0, 0]
    assert abs(shifted.std() - 0.5 / math.sqrt(12)) < 0.01
