"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative
Adversarial Networks with Limited Data"), the core: the differentiable augmentation and the
controller that adapts its strength p. Wiring into the train step comes separately.

The augmentation is ADA's `bgc` set, in the order of the reference implementation
(NVlabs stylegan2-ada-pytorch), each transform applied to each image with probability p:

- blit (pixel-exact):  x-flip, rotation by a multiple of 90 degrees, integer translation of
                       up to 1/8 of the size (uniform), the uncovered border reflected.
                       Dermoscopy has no up and no canonical orientation, so these are
                       label-preserving here.
- geom (resampled):    isotropic scaling (2^N(0, 0.2^2)), rotation before anisotropic
                       scaling (2^N(0, 0.2^2) on x, its inverse on y), rotation after it
                       (each uniform in [-pi, pi), each with probability 1 - sqrt(1 - p) so
                       that at least one of the two fires with probability p), fractional
                       translation (N(0, 0.125^2) of the size). The four are composed into
                       one affine matrix per image and applied in a single resampling.
- colour:              brightness (+N(0, 0.2^2)), contrast (x 2^N(0, 0.5^2)), luma flip,
                       hue rotation about the grey axis (uniform in [-pi, pi)), saturation
                       (x 2^N(0, 1)), composed into one 4 x 4 matrix per image acting on
                       (r, g, b, 1) in [-1, 1], i.e. about the value range's midpoint.

Resampling (a documented departure from ADA, which upsamples 2x with a wavelet filter,
samples bilinearly and downsamples): each output pixel averages four bilinear samples taken
at (+-1/4, +-1/4) of an output pixel, i.e. a 2 x 2 box antialias over a bilinear sampler at
twice the resolution. Its weights are a convex combination, so outputs stay inside the
input's value range (no ringing), and it is a gather, so its gradient to the image is the
exact adjoint (tf.raw_ops.ImageProjectiveTransformV3's registered gradient resamples the
output gradient with the inverse transform instead). The price is a little blur whenever a
geometric transform fires: at a whole-pixel offset the kernel is (1/8, 3/4, 1/8) per axis,
where ADA's wavelet filters are sharper. Reals and fakes get the same filter, so it does not
leak into G; D just sees slightly softer images. Samples that fall outside the image are
reflected back in (mirror without repeating the edge pixel, ADA's 'reflect' padding) at any
distance, so no constant padding can leak in.

Colour transforms may push values outside the value range, as in ADA; they are not clipped.

Random numbers: `draw_params(rng, batch, p, resolution)` draws every parameter for a global
batch from the run's checkpointed tf.random.Generator (replicas slice it like the latents;
resume is exact); `apply(images, params, value_range)` is a pure, differentiable function of
the images. A transform that does not fire holds its identity value, and `apply` leaves an
image whose whole group is the identity untouched bit for bit (tf.where), skipping the
group's computation when no image in the batch needs it (tf.cond): at p = 0 `apply` returns
its input exactly.

Each iteration the train step must: draw one params dict per batch D sees (reals, fakes of
the D update, fakes of the G update; the R1 penalty is taken on the augmented reals D sees),
from `controller.p`; feed D's logits on the augmented reals (and, for the 'rank'
heuristic, on the fakes of the D update) to `controller.accumulate`; and
after the iteration call `controller.maybe_adjust(iteration, global_batch)`.
"""
import math

import numpy as np
import tensorflow as tf

BLIT = ("xflip", "rotate90", "xint")
GEOM = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
BGC = BLIT + GEOM + COLOR
# --augpipe: the transform groups ADA may apply, by NVlabs' names (stylegan2-ada-pytorch
# train.py, augpipe_specs; 'bgc' is its default; config.AUGPIPES lists the same names).
# NVlabs' 'filter', 'noise' and 'cutout' groups are not implemented here.
AUGPIPES = {"blit": BLIT, "geom": GEOM, "color": COLOR, "bg": BLIT + GEOM, "bgc": BGC}
DEFAULT_AUGPIPE = "bgc"

# ADA's default magnitudes: translations as fractions of the image size, scales as std of
# log2, angles as fractions of pi, colour on [-1, 1].
XINT_MAX, XFRAC_STD = 0.125, 0.125
SCALE_STD, ANISO_STD, ROTATE_MAX = 0.2, 0.2, 1.0
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0

# The params dict: key -> value meaning "no transform". rotate_pre / rotate_post are the two
# rotations the transform name "rotate" controls. xint and xfrac are (B, 2) (x, y) in pixels,
# the rest (B,).
IDENTITY = {"xflip": 0.0, "rotate90": 0.0, "xint": 0.0,
            "scale": 1.0, "rotate_pre": 0.0, "aniso": 1.0, "rotate_post": 0.0, "xfrac": 0.0,
            "brightness": 0.0, "contrast": 1.0, "lumaflip": 0.0, "hue": 0.0, "saturation": 1.0}
GROUP_KEYS = {"blit": ("xflip", "rotate90", "xint"),
              "geom": ("scale", "rotate_pre", "aniso", "rotate_post", "xfrac"),
              "color": ("brightness", "contrast", "lumaflip", "hue", "saturation")}
GROUP_TRANSFORMS = {"blit": BLIT, "geom": GEOM, "color": COLOR}
PAIRS = ("xint", "xfrac")


def _exp2(v):
    return tf.exp(v * math.log(2.0))


def identity_params(batch):
    """A params dict in which nothing fires (tests set single entries to force a transform)."""
    return {k: tf.fill([batch, 2] if k in PAIRS else [batch], v) for k, v in IDENTITY.items()}


def draw_params(rng, batch, p, resolution, transforms=BGC):
    """Every random parameter of ADA's pipeline for `batch` images, as a dict of float32
    tensors (see IDENTITY), drawn from `rng` in a fixed order whatever p is.

    p: the augmentation probability, a scalar (tensor or tf.Variable). transforms: the names
    allowed to fire (the others keep their identity value), e.g. ("xflip",) with p = 1 forces
    x-flips alone. resolution: the image size in pixels, which translations scale with.
    """
    unknown = set(transforms) - set(BGC)
    if unknown:
        raise ValueError(f"unknown ADA transforms {sorted(unknown)}; choose from {BGC}")
    p = tf.cast(p, tf.float32)
    size = float(resolution)

    def fire(name, value, prob=None, key=None):
        # value: (B,) or (B, 2), drawn first; then one uniform per image decides whether it
        # fires. name: the transform; key: its entry in params (default the same).
        key = key or name
        prob = (p if prob is None else prob) * (1.0 if name in transforms else 0.0)
        on = rng.uniform([batch]) < prob
        return tf.where(on[:, None] if key in PAIRS else on, value, IDENTITY[key])

    def u(*shape):
        return rng.uniform([batch, *shape])

    def n(*shape):
        return rng.normal([batch, *shape])

    # Two rotations, each with probability p_rot: P(at least one) = 1 - (1 - p_rot)^2 = p.
    p_rot = 1.0 - tf.sqrt(tf.clip_by_value(1.0 - p, 0.0, 1.0))
    angle = math.pi * ROTATE_MAX
    params = {}
    params["xflip"] = fire("xflip", tf.floor(u() * 2))
    params["rotate90"] = fire("rotate90", tf.floor(u() * 4))
    params["xint"] = fire("xint", tf.round((u(2) * 2 - 1) * XINT_MAX * size))
    params["scale"] = fire("scale", _exp2(n() * SCALE_STD))
    params["rotate_pre"] = fire("rotate", (u() * 2 - 1) * angle, p_rot, "rotate_pre")
    params["aniso"] = fire("aniso", _exp2(n() * ANISO_STD))
    params["rotate_post"] = fire("rotate", (u() * 2 - 1) * angle, p_rot, "rotate_post")
    params["xfrac"] = fire("xfrac", n(2) * XFRAC_STD * size)
    params["brightness"] = fire("brightness", n() * BRIGHTNESS_STD)
    params["contrast"] = fire("contrast", _exp2(n() * CONTRAST_STD))
    params["lumaflip"] = fire("lumaflip", tf.floor(u() * 2))
    params["hue"] = fire("hue", (u() * 2 - 1) * math.pi * HUE_MAX)
    params["saturation"] = fire("saturation", _exp2(n() * SATURATION_STD))
    return params


def apply(images, params, value_range, transforms=BGC):
    """Augment square RGB images (B, R, R, 3) in value_range with `params` from draw_params
    (or identity_params with entries set). Returns float32 (B, R, R, 3), differentiable
    w.r.t. images. Groups run in ADA's order: blit, geometric, colour.

    transforms: those draw_params was allowed to fire (an --augpipe). A group none of whose
    transforms is allowed holds its identity in every image, so it is left out of the graph
    altogether: the same result bit for bit, and a smaller graph (and gradient) to trace."""
    x = tf.cast(images, tf.float32)
    _, height, width, channels = x.shape
    if height is None or height != width or channels != 3:
        raise ValueError(f"ADA needs square RGB images of known size, got {x.shape}")
    groups = (("blit", lambda y: _blit(y, params)),
              ("geom", lambda y: _geometric(y, params)),
              ("color", lambda y: _color(y, params, value_range)))
    for group, transform in groups:
        if set(GROUP_TRANSFORMS[group]) & set(transforms):
            x = _where_active(_active(params, group), transform, x)
    return x


def _active(params, group):
    """(B,) bool: whether any transform of `group` moves image b (its value differs from the
    identity)."""
    flags = []
    for key in GROUP_KEYS[group]:
        differs = tf.not_equal(params[key], IDENTITY[key])
        flags.append(tf.reduce_any(differs, axis=1) if key in PAIRS else differs)
    return tf.reduce_any(tf.stack(flags, axis=0), axis=0)


def _where_active(active, fn, x):
    """fn(x) for the images flagged in `active` (B,), x itself (bit for bit) for the others;
    fn is not run at all when no image is flagged."""
    def run():
        return tf.where(active[:, None, None, None], fn(x), x)
    return tf.cond(tf.reduce_any(active), run, lambda: tf.identity(x))


# ---- 2-D geometry. Points are (x, y, 1) in pixel units centred on the image centre, x to the
# right and y down. Every matrix here is an inverse: it maps an output pixel to the input point
# it samples. For transforms T1 then T2 ... then Tn (ADA's order) the output samples the input
# at inv(T1) @ inv(T2) @ ... @ inv(Tn) @ q, so the inverses are multiplied left to right in
# the same order as the transforms are applied.

def _matrix(rows, like):
    """(B, 3, 3) from 3 rows of 3 entries, each a (B,) tensor or a number."""
    shape = tf.shape(like)
    return tf.stack([tf.stack([tf.broadcast_to(tf.cast(e, tf.float32), shape) for e in row],
                              axis=-1) for row in rows], axis=-2)


def _translate_inv(tx, ty):
    return _matrix([[1, 0, -tx], [0, 1, -ty], [0, 0, 1]], tx)


def _scale_inv(sx, sy):
    return _matrix([[1 / sx, 0, 0], [0, 1 / sy, 0], [0, 0, 1]], sx)


def _rotate_inv(cos, sin):
    """Inverse of the rotation by the angle with this cosine and sine (clockwise on screen
    for a positive angle, y being down; angles are drawn symmetrically, so either way)."""
    return _matrix([[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]], cos)


def _blit_matrix(params):
    """(B, 3, 3): x-flip, then rotation by rotate90 quarter turns, then integer translation;
    entries exactly integers (the quarter-turn cosines and sines come from a table)."""
    flip = 1.0 - 2.0 * params["xflip"]                            # (B,) +1 or -1
    quarter = tf.cast(params["rotate90"], tf.int32)
    cos = tf.gather([1.0, 0.0, -1.0, 0.0], quarter)
    sin = tf.gather([0.0, 1.0, 0.0, -1.0], quarter)
    t = params["xint"]                                            # (B, 2) pixels
    return (_scale_inv(flip, tf.ones_like(flip)) @ _rotate_inv(cos, sin)
            @ _translate_inv(t[:, 0], t[:, 1]))


def _geometric_matrix(params):
    """(B, 3, 3): isotropic scale, rotation, anisotropic scale, rotation, fractional
    translation, in that order (ADA's)."""
    s, a = params["scale"], params["aniso"]
    pre, post = params["rotate_pre"], params["rotate_post"]
    t = params["xfrac"]                                           # (B, 2) pixels
    return (_scale_inv(s, s) @ _rotate_inv(tf.cos(pre), tf.sin(pre)) @ _scale_inv(a, 1 / a)
            @ _rotate_inv(tf.cos(post), tf.sin(post)) @ _translate_inv(t[:, 0], t[:, 1]))


def _source_points(matrix, size, offset=(0.0, 0.0)):
    """Where each output pixel (shifted by `offset` output pixels) samples the input:
    (xs, ys), each (B, size * size) in input pixel indices (row-major over the output)."""
    centre = (size - 1) / 2
    r = tf.range(size, dtype=tf.float32) - centre
    gy, gx = tf.meshgrid(r + offset[1], r + offset[0], indexing="ij")   # (R, R)
    q = tf.stack([tf.reshape(gx, [-1]), tf.reshape(gy, [-1]), tf.ones([size * size])])
    src = tf.einsum("bij,jn->bin", matrix[:, :2, :], q)            # (B, 2, R * R)
    return src[:, 0] + centre, src[:, 1] + centre


def _reflect(index, size):
    """Fold integer pixel indices (any distance outside) back into [0, size) by mirroring
    about the edge pixels without repeating them: -1 -> 1, size -> size - 2."""
    period = 2 * (size - 1)
    m = tf.math.floormod(index, period)
    return tf.where(m >= size, period - m, m)


def _gather_pixels(flat, xs, ys, size):
    """flat (B, R * R, C) at integer (xs, ys) (B, N), reflected into the image -> (B, N, C)."""
    idx = _reflect(ys, size) * size + _reflect(xs, size)                 # (B, N)
    # The same values as tf.gather(flat, idx, batch_dims=1), gathered on axis 0 of the
    # (B * R * R, C) pixels: batch_dims' gradient transposes with a computed permutation,
    # which XLA cannot compile in R1's double backward (--xla with ADA); axis 0's cannot.
    channels = flat.shape[2] if flat.shape[2] is not None else tf.shape(flat)[2]
    rows = idx + tf.range(tf.shape(idx)[0])[:, None] * tf.shape(flat)[1]
    return tf.gather(tf.reshape(flat, [-1, channels]), rows)             # (B, N, C)


def _flatten(x):
    """(B, R, R, C) -> (B, R * R, C), R (a Python int) and the shape tensor."""
    shape = tf.shape(x)
    return tf.reshape(x, [shape[0], -1, shape[3]]), x.shape[1], shape


def _blit(x, params):
    """Pixel-exact x-flip, quarter turns and integer translation with reflection: each output
    pixel is one input pixel, found by rounding (the points are whole pixels already)."""
    flat, size, shape = _flatten(x)
    xs, ys = _source_points(_blit_matrix(params), size)
    xs, ys = tf.cast(tf.round(xs), tf.int32), tf.cast(tf.round(ys), tf.int32)
    return tf.reshape(_gather_pixels(flat, xs, ys, size), shape)


def _bilinear(flat, xs, ys, size):
    """Bilinear samples of flat (B, R * R, C) at continuous points (B, N) -> (B, N, C)."""
    x0, y0 = tf.floor(xs), tf.floor(ys)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]           # (B, N, 1)
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    top = (_gather_pixels(flat, x0, y0, size) * (1 - fx)
           + _gather_pixels(flat, x0 + 1, y0, size) * fx)
    bottom = (_gather_pixels(flat, x0, y0 + 1, size) * (1 - fx)
              + _gather_pixels(flat, x0 + 1, y0 + 1, size) * fx)
    return top * (1 - fy) + bottom * fy


def _geometric(x, params):
    """One resampling by the composed geometric matrix: the mean of four bilinear samples at
    (+-1/4, +-1/4) output pixels around each output pixel's centre (a 2 x 2 box antialias)."""
    flat, size, shape = _flatten(x)
    matrix = _geometric_matrix(params)
    total = 0.0
    for offset in ((-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25), (0.25, 0.25)):
        xs, ys = _source_points(matrix, size, offset)
        total += _bilinear(flat, xs, ys, size)
    return tf.reshape(total / 4, shape)


# ---- Colour. Homogeneous (r, g, b, 1) in [-1, 1]; each matrix acts on it from the left, so
# for transforms applied in ADA's order the product is T_n @ ... @ T_1. The grey axis is
# v = (1, 1, 1, 0) / sqrt(3).

_V = np.array([1.0, 1.0, 1.0, 0.0], np.float32) / np.sqrt(3.0)
_VV = np.outer(_V, _V)                                            # projector onto grey
_I3 = np.diag([1.0, 1.0, 1.0, 0.0]).astype(np.float32)            # the colour block
_E33 = np.diag([0.0, 0.0, 0.0, 1.0]).astype(np.float32)           # the homogeneous 1
_K = np.array([[0, -1, 1, 0], [1, 0, -1, 0], [-1, 1, 0, 0], [0, 0, 0, 0]],
              np.float32) / np.sqrt(3.0)                          # cross product with v


def _color_matrix(params):
    """(B, 4, 4): brightness, contrast, luma flip, hue rotation, saturation (ADA's order)."""
    def per_image(value):
        return tf.reshape(value, [-1, 1, 1])
    vv, i3, e33, k = (tf.constant(a, tf.float32) for a in (_VV, _I3, _E33, _K))
    b = per_image(params["brightness"])
    c = per_image(params["contrast"])
    flip = per_image(params["lumaflip"])
    hue = per_image(params["hue"])
    sat = per_image(params["saturation"])
    eye = tf.eye(4)
    shift = tf.constant([[0, 0, 0, 1]] * 3 + [[0, 0, 0, 0]], tf.float32)
    brightness = eye + shift * b                                  # adds b to r, g and b
    contrast = i3 * c + e33                                       # scales about 0 (mid-grey)
    lumaflip = eye - 2 * vv * flip                                # mirror along the grey axis
    # Rodrigues: rotation by `hue` about v = vv^T + cos (I - vv^T) + sin [v]x
    rotation = vv + tf.cos(hue) * (i3 - vv) + tf.sin(hue) * k + e33
    saturation = vv + (i3 - vv) * sat + e33                       # scales away from grey
    return saturation @ rotation @ lumaflip @ contrast @ brightness


def _color(x, params, value_range):
    """Apply the colour matrix in [-1, 1]: y = A x + t per pixel, A (3, 3), t (3,)."""
    low, high = value_range
    mid, half = (low + high) / 2, (high - low) / 2
    m = _color_matrix(params)
    unit = (x - mid) / half                                       # (B, R, R, 3) in [-1, 1]
    unit = tf.einsum("bij,bhwj->bhwi", m[:, :3, :3], unit) + m[:, None, None, :3, 3]
    return unit * half + mid


# ---- The adaptive controller.

P_MAX = float(np.nextafter(np.float32(1.0), np.float32(0.0)))   # largest float32 below 1


# The overfitting heuristics r_t can be computed with (--ada-heuristic; a run's config keeps
# its own): 'sign' is ADA's E[sign(D(real))], made for a logistic D; 'lsgan' is E[D(real)],
# for a least-squares D with targets -1 (fake) and +1 (real); 'rank' is
# E[sign(D(real_i) - D(fake_i))] over the (real, fake) pairs of each batch, on D's own
# scale whatever its coding. See AdaController.
HEURISTICS = ("sign", "lsgan", "rank")


def real_sign_stats(real_logits, heuristic="sign", fake_logits=None):
    """(sum over the images of the heuristic's per-image value, count) as float32 scalars:
    what one replica contributes to r_t. 'sign': sign(D(real)); 'lsgan': D(real) itself;
    'rank': sign(D(real_i) - D(fake_i)), real row i paired with fake row i of the same
    batch (fake_logits: D's logits on the fakes of the same D update, as many as the reals).
    Rows are paired by their index, and every step gives a replica the same rows of the
    global batch of reals and of fakes, so the sums over the replicas equal one device's."""
    logits = tf.cast(real_logits, tf.float32)
    if heuristic == "sign":
        values = tf.sign(logits)
    elif heuristic == "lsgan":
        values = logits
    elif heuristic == "rank":
        if fake_logits is None:
            raise ValueError("the 'rank' heuristic needs D's logits on the fakes too")
        fake = tf.reshape(tf.cast(fake_logits, tf.float32), [-1])          # (b,)
        values = tf.sign(tf.reshape(logits, [-1]) - fake)                   # (b,) pairs
    else:
        raise ValueError(f"unknown ADA heuristic {heuristic!r}; choose from {HEURISTICS}")
    return tf.reduce_sum(values), tf.cast(tf.size(values), tf.float32)


ADJUST_INTERVAL = 4   # ADA: p is adjusted after every 4th iteration


class AdaController(tf.Module):
    """ADA's augmentation probability p, adapted to how much D overfits.

    The overfitting heuristic is r_t = E[sign(D(real))] ('sign'; 'lsgan' and 'rank' below) over the
    reals D saw since the last adjustment: the fraction of reals on the real side of D's decision boundary at 0, minus
    the fraction on the fake side. Every `interval` iterations p moves by
    sign(r_t - target) * batch * interval / (ada_kimg * 1000), i.e. it can traverse 0 -> 1 in
    ada_kimg thousand images, and is clipped to [0, 1). target and ada_kimg are the run's
    settings (--ada-target, --ada-kimg; their defaults, ADA's 0.6 and 500 kimg, live in
    config.COMMON_DEFAULTS); the interval is ADA's fixed ADJUST_INTERVAL of 4 iterations.

    heuristic 'sign' (ADA's, for the logistic D of StyleGAN2 and DCGAN): D outputs log-odds,
    positive means D calls the image real; r_t near 1 means D puts the reals it was shown on
    the real side, whatever their margin. (A real logit of exactly 0 counts as 0.)

    heuristic 'lsgan' (SL-StyleGAN's default from issue 21; its runs before that kept
    'sign'): r_t = E[D(real)]. SL-StyleGAN's least-squares D is trained toward +1 on reals
    and -1 on fakes, so D(real) is the reals' place on a scale where 0 is the decision
    boundary and +1 the real target: r_t = 1 when D puts every real it was shown on its
    target (as a memorising D does), 0 when the reals sit on the boundary, and for a D
    saturated at +-1 it equals the sign heuristic. It is used instead of the sign because
    this D has dropout 0.6 before its final Dense(1): in training mode, the mode r_t is
    read in, the dropout mask adds noise to each logit that is large against the reals'
    margin, so E[sign] is pulled toward 0 (measured: docs/bench-families.md), while the
    logit is linear in the dropped-out features, so E over masks of D(real) equals the
    inference-mode logit exactly: the mean is unbiased by dropout, the sign is not.

    heuristic 'rank' (issue 21, an option): r_t = E_i[sign(D(real_i) - D(fake_i))] over
    the pairs of a real and a fake in the same row of each batch D was shown: the share of
    pairs D orders correctly minus the share it orders wrongly, i.e. 2 AUC - 1 of D's
    real-vs-fake scores, estimated without bias from one fake per real. It is ADA's sign
    with the fixed boundary at 0 replaced by a fake from the same update, so it needs no
    scale and no offset: the same for a logistic and a least-squares D, unchanged when D
    shifts or shrinks all its outputs (the LSGAN D's logits sit within ~0.1 of 0). r_t = 1
    when every real outscores its fake (a D saturated at its targets, where it equals
    'sign'), 0 when D cannot order them; target 0.6 means D orders 80 % of pairs right.
    Like 'sign', and unlike 'lsgan', it is pulled toward 0 by dropout noise.

    fixed_p: hold p at this value (ablations, --ada-p); accumulation and r_t still run for the
    log, p never moves. augpipe: which of the pipeline's groups may fire (AUGPIPES, NVlabs'
    --augpipe names; the step draws with `transforms`); the others keep their identity, and
    the random draws are the same whatever it is. All state is tf.Variables (see
    checkpoint_items). Under a distribution strategy call accumulate / accumulate_stats /
    maybe_adjust in cross-replica context (in the step, outside strategy.run), with the
    replicas' real_sign_stats reduced by SUM.
    """

    def __init__(self, *, target, ada_kimg, fixed_p=None, interval=ADJUST_INTERVAL,
                 heuristic="sign", augpipe=DEFAULT_AUGPIPE, name="ada"):
        super().__init__(name=name)
        if heuristic not in HEURISTICS:
            raise ValueError(f"unknown ADA heuristic {heuristic!r}; choose from {HEURISTICS}")
        if augpipe not in AUGPIPES:
            raise ValueError(f"unknown ADA augpipe {augpipe!r}; choose from {tuple(AUGPIPES)}")
        self.heuristic = heuristic
        self.augpipe, self.transforms = augpipe, AUGPIPES[augpipe]
        if fixed_p is not None and not 0.0 <= fixed_p <= 1.0:
            raise ValueError(f"fixed_p must be in [0, 1], got {fixed_p}")
        if ada_kimg <= 0 or interval < 1:
            raise ValueError("ada_kimg must be positive and interval at least 1")
        self.target, self.ada_kimg, self.interval = float(target), float(ada_kimg), int(interval)
        self.fixed = fixed_p is not None
        scalar = dict(dtype=tf.float32, trainable=False)
        self.p = tf.Variable(float(fixed_p or 0.0), name="p", **scalar)
        self.sign_sum = tf.Variable(0.0, name="sign_sum", **scalar)      # since last adjust
        self.sign_count = tf.Variable(0.0, name="sign_count", **scalar)
        self.rt = tf.Variable(0.0, name="rt", **scalar)                  # at the last adjust

    def checkpoint_items(self):
        """Trackables for tf.train.Checkpoint(**items, ...): p, the accumulators and r_t."""
        return {"ada_p": self.p, "ada_sign_sum": self.sign_sum,
                "ada_sign_count": self.sign_count, "ada_rt": self.rt}

    def accumulate(self, real_logits, fake_logits=None):
        """Add the heuristic's values of D's logits on (augmented) reals, any shape (and,
        for 'rank', on as many fakes of the same update, paired row by row)."""
        self.accumulate_stats(*real_sign_stats(real_logits, self.heuristic, fake_logits))

    def accumulate_stats(self, sign_sum, count):
        """Add a precomputed (sum of signs, count), e.g. real_sign_stats summed over replicas."""
        self.sign_sum.assign_add(tf.cast(sign_sum, tf.float32))
        self.sign_count.assign_add(tf.cast(count, tf.float32))

    def adjust(self, batch_size):
        """r_t from the accumulators, move p (unless fixed or nothing was accumulated), reset
        the accumulators. batch_size: images per iteration (the global batch). Returns p."""
        seen = self.sign_count > 0
        rt = self.sign_sum / tf.maximum(self.sign_count, 1.0)
        if not self.fixed:
            rate = tf.cast(batch_size, tf.float32) * (self.interval / (self.ada_kimg * 1000))
            step = tf.where(seen, tf.sign(rt - self.target) * rate, 0.0)
            self.p.assign(tf.clip_by_value(self.p + step, 0.0, P_MAX))
        self.rt.assign(tf.where(seen, rt, self.rt))
        self.sign_sum.assign(0.0)
        self.sign_count.assign(0.0)
        return tf.identity(self.p)

    def maybe_adjust(self, iteration, batch_size):
        """adjust() after every `interval`-th iteration, counting iterations from 0 (so after
        iterations 3, 7, 11, ... for interval 4). iteration: int or scalar tensor."""
        due = tf.equal(tf.math.floormod(tf.cast(iteration, tf.int64) + 1, self.interval), 0)
        return tf.cond(due, lambda: self.adjust(batch_size), lambda: tf.identity(self.p))
