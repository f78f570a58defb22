"""ADA: the augmentation pipeline (identity at p = 0, exact blits, reflection without leaks,
gradients through every transform, colour maths) and the adaptive controller (its step, its
clipping, fixed mode, checkpointing)."""
import math

import numpy as np
import pytest
import tensorflow as tf

from skingan import ada

RANGES = [(0.0, 1.0), (-1.0, 1.0)]
TRANSFORMS = ada.BGC
PAPER = dict(target=0.6, ada_kimg=500)   # ADA's (Karras et al. 2020) target and speed


def images(b=4, size=16, value_range=(0.0, 1.0), seed=0):
    low, high = value_range
    return tf.constant(np.random.RandomState(seed).uniform(low, high, (b, size, size, 3)),
                       tf.float32)


def forced(name, b=8, size=16, seed=1):
    """Params with transform `name` firing on every image (p = 1), nothing else."""
    return ada.draw_params(tf.random.Generator.from_seed(seed), b, 1.0, size, (name,))


def with_entry(b, **entries):
    params = ada.identity_params(b)
    params.update({k: tf.constant(v, tf.float32) for k, v in entries.items()})
    return params


# ---- identity and exactness

@pytest.mark.parametrize("value_range", RANGES)
def test_p_zero_is_the_exact_identity(value_range):
    x = images(value_range=value_range)
    rng = tf.random.Generator.from_seed(0)
    for _ in range(3):
        params = ada.draw_params(rng, 4, tf.Variable(0.0), 16)
        for key, value in params.items():
            np.testing.assert_array_equal(value, ada.identity_params(4)[key], err_msg=key)
        np.testing.assert_array_equal(ada.apply(x, params, value_range), x)


def test_an_image_nothing_fires_on_is_untouched_beside_one_that_is_transformed():
    x = images(b=2)
    params = with_entry(2, scale=[1.0, 0.8], hue=[0.0, 1.0], xflip=[0.0, 1.0])
    out = ada.apply(x, params, (0.0, 1.0)).numpy()
    np.testing.assert_array_equal(out[0], x[0])
    assert not np.allclose(out[1], x[1])


@pytest.mark.parametrize("name", TRANSFORMS)
def test_each_transform_fires_at_p_one_and_changes_images(name):
    x = images(b=8)
    params = forced(name)
    out = ada.apply(x, params, (0.0, 1.0)).numpy()
    changed = np.any(out != x.numpy(), axis=(1, 2, 3))
    moved = np.zeros(8, bool)
    for key, value in params.items():
        moved |= np.any(np.reshape(value.numpy() != ada.IDENTITY[key], (8, -1)), axis=1)
    # exactly the images whose parameter is not the identity change (a fired x-flip, quarter
    # turn, luma flip or integer shift can draw "none"), and at least half of them do
    np.testing.assert_array_equal(changed, moved)
    assert changed.sum() >= 4


def test_blits_move_whole_pixels_with_reflection():
    x = images(b=1).numpy()
    flip = ada.apply(x, with_entry(1, xflip=[1.0]), (0.0, 1.0)).numpy()
    np.testing.assert_array_equal(flip, x[:, :, ::-1])
    turns = [ada.apply(x, with_entry(1, rotate90=[k]), (0.0, 1.0)).numpy() for k in range(4)]
    expected = [np.rot90(x, k, axes=(1, 2)) for k in range(4)]
    for turn in turns:   # each quarter turn is one of the four exact rotations
        assert any(np.array_equal(turn, e) for e in expected)
    assert len({t.tobytes() for t in turns}) == 4
    # +2 pixels in x: columns move right; the uncovered ones mirror columns 2 and 1
    shift = ada.apply(x, with_entry(1, xint=[[2.0, 0.0]]), (0.0, 1.0)).numpy()
    np.testing.assert_array_equal(shift[:, :, 2:], x[:, :, :-2])
    np.testing.assert_array_equal(shift[:, :, :2], x[:, :, [2, 1]])


def test_integer_translation_stays_within_an_eighth():
    params = ada.draw_params(tf.random.Generator.from_seed(2), 2000, 1.0, 32, ("xint",))
    t = params["xint"].numpy()
    assert np.all(t == np.round(t)) and np.abs(t).max() == 4        # 32 / 8


# ---- geometry: range and reflection

@pytest.mark.parametrize("value_range", RANGES)
def test_geometric_transforms_keep_values_inside_the_input_range(value_range):
    x = images(b=8, value_range=value_range)
    params = ada.draw_params(tf.random.Generator.from_seed(3), 8, 1.0, 16, ada.BLIT + ada.GEOM)
    out = ada.apply(x, params, value_range).numpy()
    assert out.min() >= x.numpy().min() - 1e-6 and out.max() <= x.numpy().max() + 1e-6


@pytest.mark.parametrize("value_range", RANGES)
def test_a_constant_image_stays_constant_under_geometric_transforms(value_range):
    # With constant (zero) padding a zoomed-out or rotated image would show the fill.
    value = value_range[1] * 0.9
    x = tf.fill([8, 16, 16, 3], value)
    params = ada.draw_params(tf.random.Generator.from_seed(4), 8, 1.0, 16, ada.BLIT + ada.GEOM)
    params["scale"] = tf.constant([0.5, 0.6, 0.7, 0.8, 1.2, 0.5, 0.6, 2.0])
    out = ada.apply(x, params, value_range).numpy()
    np.testing.assert_allclose(out, value, rtol=0, atol=1e-6)


def test_no_foreign_colour_enters_from_outside_the_image():
    # An image of colour a with a 1-pixel frame of colour b: with reflection every output
    # pixel is a mix of a and b, i.e. lies on the segment from a to b; any constant padding
    # (black, mid-grey) would pull pixels off it.
    a, b = np.array([0.8, 0.3, 0.3]), np.array([0.2, 0.6, 0.9])
    img = np.tile(a, (8, 16, 16, 1))
    img[:, 0], img[:, -1], img[:, :, 0], img[:, :, -1] = b, b, b, b
    params = ada.draw_params(tf.random.Generator.from_seed(5), 8, 1.0, 16, ada.BLIT + ada.GEOM)
    params["scale"] = tf.fill([8], 0.5)                  # zoom out: lots of outside
    out = ada.apply(tf.constant(img, tf.float32), params, (0.0, 1.0)).numpy().reshape(-1, 3)
    w = (out - a) @ (b - a) / ((b - a) @ (b - a))         # position along the segment
    np.testing.assert_allclose(out, a + w[:, None] * (b - a), atol=1e-5)
    assert w.min() >= -1e-5 and w.max() <= 1 + 1e-5
    assert (w > 0.5).mean() > 0.1                         # the frame does get reflected in


def test_fractional_translation_by_whole_pixels_moves_the_image():
    # A smooth image (a ramp along x) shifted 3 px: away from the edges the 2 x 2 antialias
    # leaves a linear ramp unchanged, so the shift is exact.
    ramp = tf.tile(tf.reshape(tf.range(16, dtype=tf.float32) / 15, [1, 1, 16, 1]), [1, 16, 1, 3])
    out = ada.apply(ramp, with_entry(1, xfrac=[[3.0, 0.0]]), (0.0, 1.0)).numpy()
    np.testing.assert_allclose(out[:, :, 4:15], ramp.numpy()[:, :, 1:12], atol=1e-6)


# ---- colour

def test_colour_transforms_act_about_the_midpoint():
    vr = (0.0, 1.0)
    px = tf.constant([[[[0.2, 0.5, 0.9]]]] * 2)
    hue = ada.apply(px, with_entry(2, hue=[2 * math.pi / 3] * 2), vr).numpy()[0, 0, 0]
    np.testing.assert_allclose(hue, [0.9, 0.2, 0.5], atol=1e-6)   # a third turn permutes rgb
    grey = ada.apply(px, with_entry(2, saturation=[0.0] * 2), vr).numpy()[0, 0, 0]
    np.testing.assert_allclose(grey, [1.6 / 3] * 3, atol=1e-6)
    flip = ada.apply(px, with_entry(2, lumaflip=[1.0] * 2), vr).numpy()[0, 0, 0]
    # the grey level (mean) mirrors about 0.5; the chroma stays
    np.testing.assert_allclose(flip, np.array([0.2, 0.5, 0.9]) + 1 - 2 * 1.6 / 3, atol=1e-6)
    bright = ada.apply(px, with_entry(2, brightness=[0.2] * 2), (-1.0, 1.0)).numpy()[0, 0, 0]
    np.testing.assert_allclose(bright, [0.4, 0.7, 1.1], atol=1e-6)
    con = ada.apply(px, with_entry(2, contrast=[2.0] * 2), vr).numpy()[0, 0, 0]
    np.testing.assert_allclose(con, [-0.1, 0.5, 1.3], atol=1e-6)  # doubled about 0.5
    mid = tf.fill([2, 4, 4, 3], 0.5)       # mid-grey is fixed by all but brightness
    for name in ("contrast", "lumaflip", "hue", "saturation"):
        np.testing.assert_allclose(ada.apply(mid, forced(name, b=2, size=4), vr), mid,
                                   atol=1e-6)


# ---- gradients

@pytest.mark.parametrize("name", TRANSFORMS)
def test_gradient_flows_through_each_transform(name):
    x = tf.Variable(images(b=8))
    params = forced(name)
    weights = tf.constant(np.random.RandomState(6).normal(size=(8, 16, 16, 3)), tf.float32)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(ada.apply(x, params, (0.0, 1.0)) * weights)
    grad = tape.gradient(y, x).numpy()
    assert np.all(np.isfinite(grad)) and np.count_nonzero(grad) > 0


def test_geometric_gradient_is_the_adjoint_of_the_resampling():
    # <apply(x), w> is linear in x, so its gradient g satisfies <g, x> = <apply(x), w>.
    x = tf.Variable(images(b=2))
    params = with_entry(2, scale=[0.7, 1.3], rotate_pre=[0.4, -2.0], xfrac=[[0.3, -1.7]] * 2)
    w = tf.constant(np.random.RandomState(7).normal(size=(2, 16, 16, 3)), tf.float32)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(ada.apply(x, params, (0.0, 1.0)) * w)
    g = tape.gradient(y, x)
    np.testing.assert_allclose(tf.reduce_sum(g * x), y, rtol=1e-4)


# ---- probabilities

def test_each_transform_fires_with_probability_p_and_rotation_with_p_overall():
    n, p = 20000, 0.3
    params = ada.draw_params(tf.random.Generator.from_seed(8), n, p, 32)
    moved = lambda key: np.mean(np.any(np.reshape(params[key].numpy() != ada.IDENTITY[key],
                                                  (n, -1)), axis=1))
    for key in ("scale", "aniso", "xfrac", "brightness", "contrast", "hue", "saturation"):
        assert abs(moved(key) - p) < 0.015, key
    for key in ("xflip", "lumaflip"):                    # fire, then flip half the time
        assert abs(moved(key) - p / 2) < 0.015, key
    assert abs(moved("rotate90") - p * 3 / 4) < 0.015
    either = np.mean((params["rotate_pre"].numpy() != 0) | (params["rotate_post"].numpy() != 0))
    assert abs(either - p) < 0.015                       # each 1 - sqrt(1 - p)


def test_unknown_transform_and_non_square_images_are_refused():
    with pytest.raises(ValueError, match="unknown ADA transforms"):
        ada.draw_params(tf.random.Generator.from_seed(0), 2, 0.5, 16, ("cutout",))
    with pytest.raises(ValueError, match="square RGB"):
        ada.apply(tf.zeros([1, 8, 16, 3]), ada.identity_params(1), (0.0, 1.0))


# ---- compiled

@pytest.mark.slow
def test_draw_and_apply_inside_tf_function_match_eager():
    x = images()
    p = tf.Variable(0.7)

    def augment(rng, x):
        return ada.apply(x, ada.draw_params(rng, 4, p, 16), (0.0, 1.0))

    eager = augment(tf.random.Generator.from_seed(9), x)
    rng = tf.random.Generator.from_seed(9)
    compiled = tf.function(augment)(rng, x)
    np.testing.assert_allclose(compiled, eager, atol=1e-6)
    # XLA: apply compiles and agrees (XLA's stateful random ops draw a different stream
    # from the TF kernels', so the parameters are drawn outside it here)
    params = ada.draw_params(tf.random.Generator.from_seed(9), 4, p, 16)
    jitted = tf.function(lambda x, params: ada.apply(x, params, (0.0, 1.0)), jit_compile=True)
    np.testing.assert_allclose(jitted(x, params), eager, atol=1e-5)


# ---- the controller

def feed(controller, logits, iterations):
    for _ in range(iterations):
        controller.accumulate(tf.constant(logits, tf.float32))


def test_p_rises_by_exactly_one_step_when_d_separates_the_reals():
    c = ada.AdaController(**PAPER)
    feed(c, [[2.0]] * 16, 4)                             # r_t = 1 > 0.6
    c.adjust(16)
    np.testing.assert_allclose(c.p.numpy(), 16 * 4 / (500 * 1000), rtol=1e-6)
    assert c.rt.numpy() == 1.0 and c.sign_count.numpy() == 0 and c.sign_sum.numpy() == 0
    feed(c, [[0.5]] * 16, 4)
    c.adjust(16)
    np.testing.assert_allclose(c.p.numpy(), 2 * 16 * 4 / (500 * 1000), rtol=1e-6)


def test_p_falls_by_one_step_when_d_cannot_separate_and_is_clipped_to_zero_and_one():
    c = ada.AdaController(target=0.6, ada_kimg=100)
    c.p.assign(0.5)
    feed(c, [[-1.0, 1.0, -0.1, 3.0]] * 4, 4)             # r_t = 0 < 0.6
    c.adjust(16)
    np.testing.assert_allclose(c.p.numpy(), 0.5 - 16 * 4 / (100 * 1000), rtol=1e-6)
    c.p.assign(1e-5)
    feed(c, [[-1.0]] * 16, 4)
    c.adjust(16)
    assert c.p.numpy() == 0.0
    c.p.assign(0.9999)
    feed(c, [[1.0]] * 16, 4)
    c.adjust(16)
    assert 0.9999 < c.p.numpy() < 1.0


def test_adjust_runs_every_fourth_iteration_and_not_without_data():
    c = ada.AdaController(**PAPER)
    for it in range(8):
        feed(c, [[1.0]] * 16, 1)
        c.maybe_adjust(it, 16)
        steps = (it + 1) // 4
        np.testing.assert_allclose(c.p.numpy(), steps * 64 / 500000, rtol=1e-6)
    before = c.p.numpy()
    c.adjust(16)                                          # nothing accumulated: p stays
    assert c.p.numpy() == before


def test_fixed_p_never_moves_but_still_reports_rt():
    c = ada.AdaController(**PAPER, fixed_p=0.2)
    for it in range(12):
        feed(c, [[5.0]] * 16, 1)
        c.maybe_adjust(it, 16)
    assert c.p.numpy() == np.float32(0.2)
    assert c.rt.numpy() == 1.0


def test_controller_inside_tf_function():
    c = ada.AdaController(**PAPER)

    @tf.function
    def step(iteration, logits):
        c.accumulate(logits)
        return c.maybe_adjust(iteration, 16)

    for it in range(4):
        p = step(tf.constant(it), tf.ones([16, 1]))
    np.testing.assert_allclose(p, 64 / 500000, rtol=1e-6)


def test_rng_and_controller_resume_from_a_checkpoint_to_identical_batches(tmp_path):
    x = images()
    rng, c = tf.random.Generator.from_seed(10), ada.AdaController(**PAPER)
    feed(c, [[1.0]] * 16, 4)
    c.adjust(16)
    c.p.assign_add(0.4)                                   # a p where most transforms fire
    feed(c, [[1.0, -1.0]] * 8, 2)                         # a half-filled accumulator
    path = tf.train.Checkpoint(rng=rng, **c.checkpoint_items()).save(str(tmp_path / "ckpt"))

    def next_batch(rng, c):
        return ada.apply(x, ada.draw_params(rng, 4, c.p, 16), (0.0, 1.0)).numpy()

    first = [next_batch(rng, c) for _ in range(2)]
    feed(c, [[1.0]] * 16, 2)
    c.adjust(16)
    rng2, c2 = tf.random.Generator.from_seed(99), ada.AdaController(**PAPER)
    tf.train.Checkpoint(rng=rng2, **c2.checkpoint_items()).restore(path).assert_consumed()
    np.testing.assert_allclose([c2.p.numpy(), c2.sign_sum.numpy(), c2.sign_count.numpy()],
                               [64 / 500000 + 0.4, 0.0, 32.0], rtol=1e-6)
    second = [next_batch(rng2, c2) for _ in range(2)]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    feed(c2, [[1.0]] * 16, 2)
    c2.adjust(16)
    assert c2.p.numpy() == c.p.numpy() and c2.rt.numpy() == c.rt.numpy()


# ---- the overfitting heuristic for a least-squares D (issue 21)

def test_lsgan_heuristic_is_the_mean_real_output_and_sign_its_sign():
    logits = [[0.9], [0.7], [-0.2], [0.6]]
    sign = ada.AdaController(**PAPER, heuristic="sign")
    lsgan = ada.AdaController(**PAPER, heuristic="lsgan")
    for c in (sign, lsgan):
        c.accumulate(tf.constant(logits, tf.float32))
        c.adjust(16)
    np.testing.assert_allclose(sign.rt.numpy(), (1 + 1 - 1 + 1) / 4, rtol=1e-6)
    np.testing.assert_allclose(lsgan.rt.numpy(), (0.9 + 0.7 - 0.2 + 0.6) / 4, rtol=1e-6)
    with pytest.raises(ValueError, match="heuristic"):
        ada.AdaController(**PAPER, heuristic="mean")


def dropout_head(margin, spread=0.1, features=128, rate=0.6):
    """SL-StyleGAN's D head (Dropout(0.6) -> Dense(1)) on all-ones features, with weights
    +-spread that cancel but for `margin`: its inference-mode logit is `margin` exactly; in
    training mode each dropped feature removes its +-spread, so the logit is margin plus
    zero-mean noise of std spread / (1 - rate) * sqrt(features * rate * (1 - rate))."""
    import keras
    head = keras.Sequential([keras.Input((features,)), keras.layers.Dropout(rate, seed=5),
                             keras.layers.Dense(1)])
    signs = np.tile([1.0, -1.0], features // 2)
    head.layers[-1].set_weights([(signs * spread + margin / features)[:, None],
                                 np.zeros(1)])
    return head


def test_under_dropout_the_sign_heuristic_misses_a_separated_real_set_and_lsgans_does_not():
    # Every real sits at +0.8 in inference mode (80 % of the way from the boundary 0 to the
    # real target +1, past ADA's 0.6). Training-mode dropout adds noise of std ~1.39:
    # E[sign] = 2 Phi(0.8 / 1.39) - 1 = 0.44, below the target, so ADA's sign heuristic
    # lowers p; E[D(real)] stays 0.8 (the logit is linear in the dropped features).
    head = dropout_head(margin=0.8)
    features = tf.ones([4096, 128])
    np.testing.assert_allclose(head(features, training=False).numpy(), 0.8, atol=1e-5)
    noisy = head(features, training=True)
    assert 1.2 < float(tf.math.reduce_std(noisy)) < 1.6
    sign = ada.AdaController(**PAPER, heuristic="sign")
    lsgan = ada.AdaController(**PAPER, heuristic="lsgan")
    for c in (sign, lsgan):
        c.p.assign(0.5)
        c.accumulate(noisy)
        c.adjust(16)
    assert 0.34 < sign.rt.numpy() < 0.54 and sign.p.numpy() < 0.5     # p falls: wrong
    assert abs(lsgan.rt.numpy() - 0.8) < 0.08 and lsgan.p.numpy() > 0.5  # p rises


def test_sl_stylegan_runs_default_to_the_lsgan_heuristic_and_old_runs_keep_the_sign(tmp_path):
    import json

    from skingan import steps
    from skingan.components import make_augment
    from skingan.config import resolve_config
    data = tmp_path / "data"
    data.mkdir()
    for model, expected in (("sl-stylegan", "lsgan"), ("dcgan", "sign"),
                            ("stylegan2", "sign")):
        _, cfg = resolve_config(dict(model=model, data=str(data), augment="ada"), tmp_path)
        assert cfg["ada_heuristic"] == expected, model
        assert make_augment(cfg).heuristic == expected, model
    # the step hands the controller's heuristic to each replica's statistics
    logits = tf.constant([[0.5], [-0.25], [0.25]])
    stats = steps._real_sign_stats(ada.AdaController(**PAPER, heuristic="lsgan"), logits)
    np.testing.assert_allclose(stats["real_sign_sum"].numpy(), 0.5)
    stats = steps._real_sign_stats(ada.AdaController(**PAPER, heuristic="sign"), logits)
    np.testing.assert_allclose(stats["real_sign_sum"].numpy(), 1.0)
    # a run written before the setting existed: its config.json has no ada_heuristic
    _, cfg = resolve_config(dict(model="sl-stylegan", data=str(data), augment="ada",
                                 run="old"), tmp_path)
    del cfg["ada_heuristic"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps({"run": "old",
                                                              "settings": cfg}))
    _, resumed = resolve_config(dict(model="sl-stylegan", data=str(data), run="old"),
                                tmp_path)
    assert resumed["ada_heuristic"] == "sign"


# ---- the scale-free heuristic: D's real-vs-fake order in each batch (issue 21)

def test_rank_heuristic_is_the_mean_sign_of_real_minus_fake_row_by_row():
    real = [[0.30], [0.10], [-0.20], [0.05]]
    fake = [[-0.10], [0.20], [-0.30], [0.05]]
    # pairs: 0.3 > -0.1 (+1), 0.1 < 0.2 (-1), -0.2 > -0.3 (+1), a tie (0): r_t = 1 / 4
    total, count = ada.real_sign_stats(tf.constant(real), "rank", tf.constant(fake))
    assert (total.numpy(), count.numpy()) == (1.0, 4.0)
    c = ada.AdaController(**PAPER, heuristic="rank")
    c.accumulate(tf.constant(real), tf.constant(fake))
    c.accumulate(tf.constant([[1.0], [2.0]]), tf.constant([[0.0], [3.0]]))   # +1, -1
    c.adjust(16)
    np.testing.assert_allclose(c.rt.numpy(), (1 + 0) / (4 + 2), rtol=1e-6)
    with pytest.raises(ValueError, match="fakes"):
        c.accumulate(tf.constant(real))


def test_rank_heuristic_ignores_d_scale_and_offset_where_lsgan_and_sign_do_not():
    # An LSGAN D whose outputs all sit within 0.1 of 0 but order every pair right: reals
    # at 0.02 .. 0.09, each fake 0.05 below its real. Scaled by 20 and shifted by +1
    # (another D, the same order) 'rank' reads 1 both times and p rises by one step;
    # 'lsgan' reads the mean real output 0.055 (p falls) and 2.1 for the other D.
    real = np.linspace(0.02, 0.09, 16, dtype=np.float32)[:, None]
    fake = real - 0.05
    step = 16 * 4 / (500 * 1000)
    for scale, shift in ((1.0, 0.0), (20.0, 1.0)):
        rank = ada.AdaController(**PAPER, heuristic="rank")
        lsgan = ada.AdaController(**PAPER, heuristic="lsgan")
        for _ in range(4):
            rank.accumulate(tf.constant(real * scale + shift), tf.constant(fake * scale + shift))
            lsgan.accumulate(tf.constant(real * scale + shift))
        rank.adjust(16)
        lsgan.adjust(16)
        assert rank.rt.numpy() == 1.0
        np.testing.assert_allclose(rank.p.numpy(), step, rtol=1e-6)
        np.testing.assert_allclose(lsgan.rt.numpy(), 0.055 * scale + shift, rtol=1e-5)
    # a D that cannot order its pairs: r_t 0 whatever the outputs' level, so p stays 0
    chance = ada.AdaController(**PAPER, heuristic="rank")
    chance.accumulate(tf.constant([[5.0], [5.0], [6.0], [4.0]]),
                      tf.constant([[4.0], [6.0], [5.0], [5.0]]))
    chance.adjust(16)
    assert chance.rt.numpy() == 0.0 and chance.p.numpy() == 0.0


def test_rank_statistics_summed_over_two_replicas_equal_one_device():
    # replica k holds the same rows of the reals and of the fakes (contiguous for
    # SL-StyleGAN and DCGAN, strided for StyleGAN2): pairs stay pairs, the sums add up
    rng = np.random.RandomState(3)
    real, fake = (tf.constant(rng.normal(0, 0.1, (8, 1)), tf.float32) for _ in range(2))
    whole = ada.real_sign_stats(real, "rank", fake)
    for rows in ((slice(0, 4), slice(4, 8)), (slice(0, 8, 2), slice(1, 8, 2))):
        parts = [ada.real_sign_stats(real[r], "rank", fake[r]) for r in rows]
        assert (sum(p[0].numpy() for p in parts), sum(p[1].numpy() for p in parts)) == \
            (whole[0].numpy(), whole[1].numpy())


def test_the_step_pairs_reals_with_fakes_for_rank_and_a_pass_without_fakes_adds_nothing():
    from skingan import steps
    c = ada.AdaController(**PAPER, heuristic="rank")
    real, fake = tf.constant([[0.5], [-0.25], [0.25]]), tf.constant([[0.1], [0.0], [0.3]])
    stats = steps._real_sign_stats(c, real, fake)              # +1, -1, -1
    assert (stats["real_sign_sum"].numpy(), stats["real_count"].numpy()) == (-1.0, 3.0)
    stats = steps._real_sign_stats(c, real)                    # StyleGAN2's lazy R1 pass
    assert (stats["real_sign_sum"].numpy(), stats["real_count"].numpy()) == (0.0, 0.0)
    # the other heuristics read the reals alone, fakes given or not
    stats = steps._real_sign_stats(ada.AdaController(**PAPER, heuristic="sign"), real, fake)
    assert stats["real_sign_sum"].numpy() == 1.0


def test_a_rank_run_keeps_its_heuristic_and_its_accumulators_resume(tmp_path):
    import json

    from skingan.components import make_augment
    from skingan.config import resolve_config
    data = tmp_path / "data"
    data.mkdir()
    for model in ("sl-stylegan", "dcgan", "stylegan2"):
        _, cfg = resolve_config(dict(model=model, data=str(data), augment="ada",
                                     ada_heuristic="rank"), tmp_path)
        assert cfg["ada_heuristic"] == "rank" and make_augment(cfg).heuristic == "rank"
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text(json.dumps({"run": "r", "settings": cfg}))
    _, resumed = resolve_config(dict(model="stylegan2", data=str(data), run="r"), tmp_path)
    assert resumed["ada_heuristic"] == "rank"
    # a half-filled interval checkpointed and restored: the same r_t and p afterwards
    c = ada.AdaController(**PAPER, heuristic="rank")
    c.accumulate(tf.constant([[1.0], [0.0]]), tf.constant([[0.0], [1.0]]))    # +1, -1
    c.accumulate(tf.constant([[1.0], [2.0]]), tf.constant([[0.0], [1.0]]))    # +1, +1
    path = tf.train.Checkpoint(**c.checkpoint_items()).save(str(tmp_path / "ckpt"))
    c2 = ada.AdaController(**PAPER, heuristic="rank")
    tf.train.Checkpoint(**c2.checkpoint_items()).restore(path).assert_consumed()
    for k in (c, c2):
        k.accumulate(tf.constant([[3.0], [3.0]]), tf.constant([[1.0], [1.0]]))  # +1, +1
        k.adjust(16)
    assert c.rt.numpy() == c2.rt.numpy() == np.float32(4 / 6)
    assert c.p.numpy() == c2.p.numpy() > 0


# ---- --augpipe: which groups may fire (NVlabs' names)

def test_augpipe_bg_never_changes_colour_and_draws_the_same_geometry_as_bgc():
    from skingan import config, steps
    assert tuple(ada.AUGPIPES) == config.AUGPIPES          # train.py's choices, TF-free
    drawn = {}
    for pipe in ("bgc", "bg", "color"):
        controller = ada.AdaController(**PAPER, fixed_p=1.0, augpipe=pipe)
        assert controller.transforms == ada.AUGPIPES[pipe]
        draw, augment = steps._augmenter(tf.random.Generator.from_seed(5), controller,
                                         (-1.0, 1.0))
        drawn[pipe] = draw(64, 16)["real"]                  # the reals' params, p = 1
    colour = ada.GROUP_KEYS["color"]
    geometry = ada.GROUP_KEYS["blit"] + ada.GROUP_KEYS["geom"]
    for key in colour:                                      # bg: colour keys never move
        np.testing.assert_array_equal(drawn["bg"][key], ada.IDENTITY[key])
        assert np.any(drawn["bgc"][key].numpy() != ada.IDENTITY[key]), key
    for key in geometry:     # the same draws whatever the pipe: bg's geometry is bgc's
        np.testing.assert_array_equal(drawn["bg"][key], drawn["bgc"][key])
        np.testing.assert_array_equal(drawn["color"][key], ada.IDENTITY[key])
    for key in colour:
        np.testing.assert_array_equal(drawn["color"][key], drawn["bgc"][key])
    # applied: a grey image stays exactly grey under bg (geometry moves no colour), not bgc
    grey = tf.fill([64, 16, 16, 3], 0.25)
    np.testing.assert_allclose(augment(grey, drawn["bg"]), 0.25, atol=1e-6)
    assert np.abs(augment(grey, drawn["bgc"]).numpy() - 0.25).max() > 0.1
    with pytest.raises(ValueError, match="unknown ADA augpipe"):
        ada.AdaController(**PAPER, augpipe="bgcfnc")


def test_a_pipe_leaves_its_other_groups_out_of_the_graph_with_the_same_result():
    rng = tf.random.Generator.from_seed(11)
    x = rng.uniform([16, 16, 16, 3], minval=-1.0, maxval=1.0)
    sizes = {}
    for pipe in ("blit", "bg", "bgc"):
        transforms = ada.AUGPIPES[pipe]
        params = ada.draw_params(rng, 16, 0.8, 16, transforms)
        np.testing.assert_array_equal(ada.apply(x, params, (-1.0, 1.0), transforms),
                                      ada.apply(x, params, (-1.0, 1.0)))
        traced = tf.function(lambda images, p, t=transforms: ada.apply(
            images, p, (-1.0, 1.0), t)).get_concrete_function(x, params)
        sizes[pipe] = len(traced.graph.get_operations())
    assert sizes["blit"] < sizes["bg"] < sizes["bgc"], sizes


def test_augpipe_is_a_run_setting_that_needs_ada_and_old_runs_resume_with_bgc(tmp_path):
    import json

    import train
    from skingan.components import make_augment
    from skingan.config import resolve_config
    from skingan.errors import UserError
    data = tmp_path / "data"
    data.mkdir()
    _, cfg = resolve_config(dict(model="stylegan2", data=str(data)), tmp_path)
    assert cfg["augpipe"] == "bgc" and make_augment(cfg).transforms == ada.BGC   # NVlabs'
    _, cfg = resolve_config(dict(model="stylegan2", data=str(data), augpipe="bg", run="r"),
                            tmp_path)
    assert make_augment(cfg).transforms == ada.BLIT + ada.GEOM
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text(json.dumps({"run": "r", "settings": cfg}))
    with pytest.raises(UserError, match="--augpipe was 'bg', now 'bgc'"):
        resolve_config(dict(data=str(data), run="r", augpipe="bgc"), tmp_path)
    del cfg["augpipe"]                       # a run written before the setting existed
    (tmp_path / "r" / "config.json").write_text(json.dumps({"run": "r", "settings": cfg}))
    _, resumed = resolve_config(dict(data=str(data), run="r"), tmp_path)
    assert resumed["augpipe"] == "bgc"
    with pytest.raises(UserError, match="--augpipe needs --augment ada"):
        train.check_args(train.build_parser().parse_args(
            ["--data", str(data), "--model", "dcgan", "--augpipe", "bg"]))
