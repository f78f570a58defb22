"""The demos' colour check (skingan.colour) on hand-made images of known colours."""
import numpy as np
import pytest

from skingan import colour


def flat(rgb, n=4, side=8):
    """n images of one flat colour, uint8 (n, side, side, 3)."""
    return np.broadcast_to(np.array(rgb, np.uint8), (n, side, side, 3)).copy()


def test_mean_colours_is_the_mean_of_each_images_centre():
    image = np.zeros((1, 8, 8, 3), np.uint8)
    image[0, :, :] = (200, 160, 140)           # skin
    image[0, 3:5, 3:5] = (100, 60, 40)         # the central 2 x 2 pixels: a quarter of 8
    np.testing.assert_allclose(colour.mean_colours(image), [[100.0, 60.0, 40.0]])
    whole = (np.array([200, 160, 140]) * 60 + np.array([100, 60, 40]) * 4) / 64
    np.testing.assert_allclose(colour.mean_colours(image, centre=1.0), [whole])
    with pytest.raises(ValueError):
        colour.mean_colours(np.zeros((0, 2, 2, 3), np.uint8))


def test_hue_and_saturation_of_known_colours():
    assert colour.hue_saturation((255, 0, 0)) == pytest.approx((0.0, 1.0))
    assert colour.hue_saturation((0, 255, 0)) == pytest.approx((120.0, 1.0))
    hue, sat = colour.hue_saturation((200, 150, 100))   # a skin tone: orange, hue 30
    assert hue == pytest.approx(30.0) and sat == pytest.approx(0.5)


def test_a_green_set_fails_against_brown_and_the_same_colours_pass():
    brown = flat((190, 145, 125))
    green = flat((90, 200, 90))
    same = colour.compare(flat((192, 146, 124)), brown)
    assert same["distance"] == pytest.approx(np.sqrt(2 ** 2 + 1 + 1))
    assert same["off_palette"] == 0.0 and colour.looks_like(same)
    off = colour.compare(green, brown)
    assert off["distance"] == pytest.approx(np.sqrt(100 ** 2 + 55 ** 2 + 35 ** 2))
    assert off["off_palette"] == 1.0 and not colour.looks_like(off)
    assert 100 < off["fake_hue"] < 140 and off["real_hue"] < 30


def test_a_right_mean_of_wrong_colours_is_off_palette():
    """Half purple, half green cells average to a grey-brown near the real mean: the mean
    distance alone would pass them; the off-palette share does not."""
    real = flat((150, 120, 110), n=6)
    fake = np.concatenate([flat((200, 60, 200), n=3), flat((100, 180, 20), n=3)])
    figures = colour.compare(fake, real)
    assert figures["distance"] == pytest.approx(0.0, abs=1e-9)
    assert figures["off_palette"] == 1.0
    assert not colour.looks_like(figures)


def test_off_palette_counts_only_images_far_from_every_real_one():
    real = np.concatenate([flat((190, 145, 125), n=2), flat((120, 80, 60), n=2)])
    fake = np.concatenate([flat((185, 140, 120), n=3),      # near the first real colour
                           flat((125, 84, 64), n=3),        # near the second
                           flat((60, 160, 60), n=4)])       # near neither
    assert colour.compare(fake, real)["off_palette"] == pytest.approx(0.4)
