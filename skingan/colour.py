"""Do generated images have their class's colours? A cheap check for the demos (issue 23).

A short demo GAN can paint a class in a colour no image of it has (bright green rows of a
brown lesion class). The diversity score cannot see it; this can. Per image, the mean colour
(RGB in [0, 255]) of its central box, CENTRE of the side across: inside the lesion in the
demo images (centred lesions at least 0.3 of the side across), so it is the lesion's colour,
not the skin's (over the whole image the skin dominates and the demo classes lie only 2-22
apart; over the centre, 33-122). Two figures compare a generated set with real images of its
class:

- distance: the Euclidean distance (RGB, 0-255 per channel) between the two sets' mean
  centre colours. A whole set shifted in colour (every cell greenish) moves it.
- off_palette: the share of generated images whose centre colour is farther than
  COLOUR_THRESHOLD from every real image's: images in a colour no real image of the class
  has, even when the set's mean is right (half green, half purple). Compare with a few
  hundred real images: a class whose colour varies widely needs many to cover it.

A set passes (`looks_like`) when distance <= COLOUR_THRESHOLD and off_palette <=
OFF_PALETTE_MAX. Calibration on the demo classes at 32 px: a class's demo images against 300
held-out ones of it lie 2-8 apart with 0 % off-palette, except df (its lesions take a random
colour cast, some of them green): 8 apart, 12 % off-palette.
Hue (degrees, 0 red, 120 green) and saturation (HSV, [0, 1]) of the mean colour, and the
share of images whose centre is greener than red (G > R), are reported to say which way a
set is off, but are not thresholded.
"""
import colorsys

import numpy as np

CENTRE = 0.25             # the central box measured: a quarter of the side, inside the lesion
COLOUR_THRESHOLD = 20.0   # RGB units (0-255), Euclidean
OFF_PALETTE_MAX = 0.20    # at most this share of generated images may be off the palette


def mean_colours(images_uint8, centre=CENTRE):
    """(N, H, W, 3) uint8 -> (N, 3) float64: each image's mean RGB in [0, 255] over its
    central box of `centre` x its side (at least one pixel; 1.0: the whole image)."""
    x = np.asarray(images_uint8, np.float64)
    if x.ndim != 4 or x.shape[-1] != 3 or x.shape[0] == 0:
        raise ValueError(f"expected a non-empty (N, H, W, 3) batch, got shape {x.shape}")
    h, w = x.shape[1:3]
    bh, bw = max(1, round(h * centre)), max(1, round(w * centre))
    top, left = (h - bh) // 2, (w - bw) // 2
    return x[:, top:top + bh, left:left + bw].mean(axis=(1, 2))


def hue_saturation(rgb):
    """A colour (3,) in [0, 255] -> (hue in degrees [0, 360), HSV saturation [0, 1])."""
    h, s, _ = colorsys.rgb_to_hsv(*(np.asarray(rgb, np.float64) / 255.0))
    return 360.0 * h, s


def compare(fake_uint8, real_uint8, threshold=COLOUR_THRESHOLD, centre=CENTRE):
    """The colour figures of a generated set against the real images of its class (dict)."""
    fake, real = mean_colours(fake_uint8, centre), mean_colours(real_uint8, centre)
    fake_mean, real_mean = fake.mean(axis=0), real.mean(axis=0)
    # (N_fake, N_real) distances between per-image mean colours; nearest real per fake
    nearest = np.sqrt(((fake[:, None, :] - real[None, :, :]) ** 2).sum(-1)).min(axis=1)
    fake_hue, fake_sat = hue_saturation(fake_mean)
    real_hue, real_sat = hue_saturation(real_mean)
    return dict(fake_rgb=fake_mean, real_rgb=real_mean,
                distance=float(np.sqrt(((fake_mean - real_mean) ** 2).sum())),
                off_palette=float((nearest > threshold).mean()),
                # lesions whose centre is greener than red: 22 % of the demo's df images
                fake_green=float((fake[:, 1] > fake[:, 0]).mean()),
                real_green=float((real[:, 1] > real[:, 0]).mean()),
                fake_hue=fake_hue, fake_sat=fake_sat, real_hue=real_hue, real_sat=real_sat)


def looks_like(figures, threshold=COLOUR_THRESHOLD, off_palette_max=OFF_PALETTE_MAX):
    """True when a set's figures (from compare) pass both thresholds."""
    return figures["distance"] <= threshold and figures["off_palette"] <= off_palette_max


def describe(figures):
    """One short line: 'RGB (r, g, b) vs (r, g, b), hue h vs h, sat s vs s, distance d,
    off-palette p %'."""
    f, r = figures["fake_rgb"], figures["real_rgb"]
    return (f"RGB ({f[0]:.0f}, {f[1]:.0f}, {f[2]:.0f}) vs real ({r[0]:.0f}, {r[1]:.0f}, "
            f"{r[2]:.0f}), hue {figures['fake_hue']:.0f} vs {figures['real_hue']:.0f} deg, "
            f"sat {figures['fake_sat']:.2f} vs {figures['real_sat']:.2f}, distance "
            f"{figures['distance']:.0f}, off-palette {100 * figures['off_palette']:.0f} %, "
            f"green {100 * figures['fake_green']:.0f} % vs {100 * figures['real_green']:.0f} %")
