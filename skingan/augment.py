"""Differentiable augmentation of everything the discriminator sees (DiffAugment,
Zhao et al. 2020), an option for small datasets such as ISIC's 115 dermatofibromas.

Real and generated images pass through the same family of random transforms before D, in
both the D and the G update, so D cannot memorise the few real images and G is not taught
to produce augmented-looking images (the transforms are differentiable, so G's gradient
flows through them). Policies, any combination, comma-separated (config.parse_augment reads
--augment; a policy reaches the step as a tuple of these names):

- color:       brightness shift, saturation and contrast scaling
- translation: shift by a whole number of pixels, uniform in [-size/8, size/8], the
               uncovered border filled with the range's midpoint
- cutout:      a square of half the image size at a random place set to the midpoint

Each transform is applied to every image (probability 1), with DiffAugment's magnitudes on
[-1, 1] scaled to value_range. DiffAugment fills with the zeros of a [-1, 1] image, i.e.
mid-grey: the fill here is the midpoint of value_range, never its low end (black), which
would add a dark frame or square that no real image has.

The random parameters are drawn by `draw_params` from the run's checkpointed generator
(exact resume) for the whole global batch; `apply` is then a pure function of images and
parameters, so each replica can take its slice like the latents.
"""
import tensorflow as tf


def draw_params(rng, batch, policy):
    """Uniform random numbers for `batch` images: a dict of (batch, k) float32 tensors."""
    params = {}
    if "color" in policy:
        params["color"] = rng.uniform([batch, 3])       # brightness, saturation, contrast
    if "translation" in policy:
        params["translation"] = rng.uniform([batch, 2])  # dy, dx
    if "cutout" in policy:
        params["cutout"] = rng.uniform([batch, 2])       # centre y, x
    return params


def apply(images, params, value_range):
    """Augment images (B, H, W, C) in value_range with the transforms named in params."""
    x = tf.cast(images, tf.float32)
    low, high = value_range
    span = high - low
    if "color" in params:
        u = params["color"][:, None, None, :]                     # (B, 1, 1, 3)
        # DiffAugment on [-1, 1]: brightness + U(-0.5, 0.5), i.e. up to a quarter of the
        # span either way: (u - 0.5) in [-0.5, 0.5) times half the span
        x = x + (u[..., 0:1] - 0.5) * span / 2
        mean = tf.reduce_mean(x, axis=3, keepdims=True)           # saturation x U(0, 2)
        x = (x - mean) * (u[..., 1:2] * 2) + mean
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)   # contrast x U(0.5, 1.5)
        x = (x - mean) * (u[..., 2:3] + 0.5) + mean
    if "translation" in params:
        x = _translate(x, params["translation"], (low + high) / 2)
    if "cutout" in params:
        x = _cutout(x, params["cutout"], (low + high) / 2)
    return x


def _uniform_int(u, count):
    """u in [0, 1) -> an integer in [0, count), uniform; count may be a tensor."""
    return tf.minimum(tf.cast(tf.floor(u * tf.cast(count, tf.float32)), tf.int32), count - 1)


def _translate(x, u, fill):
    """Shift each image by (dy, dx) whole pixels, each uniform in [-S, S] with S = size // 8
    (DiffAugment: int(size / 8 + 0.5), the same for the even sizes used here), filling with
    `fill`."""
    shape = tf.shape(x)
    h, w = shape[1], shape[2]
    max_shift = tf.stack([h, w]) // 8                              # (2,)
    shift = _uniform_int(u, 2 * max_shift + 1) - max_shift         # (B, 2)
    # Pad one pixel of fill all round; indices that fall outside clamp onto that border.
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=fill)
    rows = tf.clip_by_value(tf.range(h)[None, :] - shift[:, 0:1] + 1, 0, h + 1)  # (B, H)
    cols = tf.clip_by_value(tf.range(w)[None, :] - shift[:, 1:2] + 1, 0, w + 1)  # (B, W)
    x = tf.gather(padded, rows, axis=1, batch_dims=1)             # (B, H, W + 2, C)
    return tf.gather(x, cols, axis=2, batch_dims=1)               # (B, H, W, C)


def _cutout(x, u, fill):
    """Set a square of half the image size (rounded as DiffAugment: (size + 1) // 2) to `fill`.

    As DiffAugment: the square's centre is a whole pixel, uniform over [0, size] for an even
    square (so it may hang over any edge by up to half its size) and the square is clipped to
    the image.
    """
    shape = tf.shape(x)
    size = tf.stack([shape[1], shape[2]])                          # (2,) = H, W
    cut = (size + 1) // 2
    centre = _uniform_int(u, size + 1 - cut % 2)                   # (B, 2)
    start = centre - cut // 2                                      # (B, 2), may be < 0
    ys = tf.range(shape[1])[None, :] - start[:, 0:1]               # (B, H)
    xs = tf.range(shape[2])[None, :] - start[:, 1:2]               # (B, W)
    inside_y = tf.logical_and(ys >= 0, ys < cut[0])
    inside_x = tf.logical_and(xs >= 0, xs < cut[1])
    inside = tf.logical_and(inside_y[:, :, None], inside_x[:, None, :])[..., None]
    return tf.where(inside, tf.cast(fill, x.dtype), x)
