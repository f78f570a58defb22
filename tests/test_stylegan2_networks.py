"""StyleGAN2 networks: NVlabs' parameter counts, shapes, the equalised-lr, demodulation,
FIR and minibatch-stddev maths against values worked out by hand or with scipy, noise as
inputs, w_avg, mixed precision, saving, CLI.

Tiny networks (channel_base 64-256, w_dim 16) for everything but the parameter counts.
Counting needs no forward pass, only building: about 3-8 s per row on the loaded 2-core
machine, so the rows at 64 px and up are marked slow.
"""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import signal

import StyleGAN2 as sg2
from skingan.errors import UserError, run_cli
from skingan.model_summary import count_params

TINY_G = dict(z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=32)
TINY_D = dict(channel_base=128, channel_max=32, mbstd_group=2)


def noises_for(resolution, batch, rng):
    return [tf.constant(rng.standard_normal((batch, r, r, 1)), tf.float32)
            for r, _ in sg2.noise_shapes(resolution)]


# ---- tables ------------------------------------------------------------------------------

def test_channel_table_num_ws_and_noise_shapes():
    assert sg2.channels(256, 16384) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128,
                                        256: 64}
    assert sg2.channels(1024, 32768)[1024] == 32
    assert sg2.channels(32, 256, 32) == {4: 32, 8: 32, 16: 16, 32: 8}
    # NVlabs: 14 ws at 256 px, 18 at 1024 px; one noise image per modulated 3x3 conv.
    assert sg2.num_ws(256) == 14 and sg2.num_ws(1024) == 18 and sg2.num_ws(8) == 4
    assert sg2.noise_shapes(16) == [(4, 4), (8, 8), (8, 8), (16, 16), (16, 16)]
    assert len(sg2.noise_shapes(256)) == 13


@pytest.mark.parametrize("bad", [4, 12, 2048, 256.0, True, "64"])
def test_bad_resolution_is_a_user_error(bad):
    with pytest.raises(UserError, match="StyleGAN2 resolution must be a power of two"):
        sg2.check_resolution(bad)


def test_too_small_channel_base_is_a_user_error():
    with pytest.raises(UserError, match="channel_base 16 leaves no channels at 32 px"):
        sg2.channels(32, 16)


# ---- NVlabs' parameter counts (DESIGN.md section 6) ---------------------------------------

COUNTS = [  # config, resolution, classes, G, mapping, D
    pytest.param("paper256", 256, 0, 24_767_458, 2_101_248, 24_001_089, marks=pytest.mark.slow),
    pytest.param("auto", 256, 0, 23_191_522, 525_312, 24_001_089, marks=pytest.mark.slow),
    pytest.param("auto", 128, 0, 22_949_277, 525_312, 23_882_369, marks=pytest.mark.slow),
    pytest.param("auto", 64, 0, 22_243_608, 525_312, 23_407_361, marks=pytest.mark.slow),
    pytest.param("auto", 32, 0, 19_947_539, 525_312, 21_507_073),
    pytest.param("cifar", 32, 0, 19_947_539, 525_312, 20_720_641),
    pytest.param("auto", 256, 7, 23_457_762, 791_552, 26_368_576, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("config, resolution, classes, g_count, map_count, d_count", COUNTS)
def test_trainable_parameter_counts_equal_nvlabs(config, resolution, classes, g_count,
                                                 map_count, d_count):
    g, d = sg2.build_pair(resolution, config, classes)
    assert count_params(g) == g_count
    assert count_params(sg2.get_mapping(g)) == map_count
    assert count_params(d) == d_count


def test_configurations():
    assert sg2.network_config("auto", 256) == dict(
        channel_base=16384, channel_max=512, mapping_layers=2, mbstd_group=4,
        architecture="resnet", conv_clamp=256)
    assert sg2.network_config("auto", 512)["channel_base"] == 32768
    assert sg2.network_config("paper256", 256)["mbstd_group"] == 8
    cifar = sg2.network_config("cifar", 32)
    assert (cifar["architecture"], cifar["mbstd_group"], cifar["channel_base"]) == (
        "orig", 32, 32768)
    with pytest.raises(UserError, match="--config must be one of"):
        sg2.network_config("ffhq", 256)


# ---- shapes ------------------------------------------------------------------------------

@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_shapes(resolution):
    rng = np.random.default_rng(0)
    g = sg2.build_generator(resolution, **TINY_G)
    d = sg2.build_discriminator(resolution, **TINY_D)
    mapping, synthesis = sg2.get_mapping(g), sg2.get_synthesis(g)
    assert len(g.inputs) == 1 + len(sg2.noise_shapes(resolution))
    z = tf.constant(rng.standard_normal((4, 16)), tf.float32)
    noises = noises_for(resolution, 4, rng)
    ws = mapping(z)
    assert ws.shape == (4, sg2.num_ws(resolution), 16)
    np.testing.assert_array_equal(ws[:, 0], ws[:, -1])       # broadcast: one w per image
    images = g([z] + noises)
    assert images.shape == (4, resolution, resolution, 3) and images.dtype == tf.float32
    np.testing.assert_allclose(synthesis([ws] + noises), images, rtol=1e-5, atol=1e-6)
    assert d(images).shape == (4, 1)
    assert np.all(np.isfinite(images)) and np.all(np.isfinite(d(images)))


def test_conditional_shapes_label_last_and_labels_matter():
    rng = np.random.default_rng(1)
    g = sg2.build_generator(16, num_classes=3, **TINY_G)
    d = sg2.build_discriminator(16, num_classes=3, **TINY_D)
    assert g.inputs[-1].dtype == "int32" and d.inputs[-1].dtype == "int32"
    z = tf.constant(rng.standard_normal((2, 16)), tf.float32)
    noises = noises_for(16, 2, rng)
    a = g([z] + noises + [tf.constant([0, 0])])
    b = g([z] + noises + [tf.constant([1, 2])])
    assert a.shape == (2, 16, 16, 3)
    assert not np.allclose(a, b)
    assert not np.allclose(d([a, tf.constant([0, 0])]), d([a, tf.constant([1, 2])]))
    # The discriminator's label mapping: NVlabs' default 8 layers into cmap_dim = C4 = 32.
    assert d.get_layer("mapping").output.shape == (None, 32)
    assert len([l for l in d.get_layer("mapping").layers if l.name.startswith("fc")]) == 8


def test_orig_discriminator_has_no_skip_branch():
    d = sg2.build_discriminator(16, architecture="orig", **TINY_D)
    assert not any(layer.name.endswith("_skip") for layer in d.layers)
    with pytest.raises(UserError, match="architecture must be"):
        sg2.build_discriminator(16, architecture="skip", **TINY_D)


# ---- equalised learning rate ------------------------------------------------------------

@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_fc_output_variance_at_init_and_effective_learning_rate(lr_mul):
    keras.utils.set_random_seed(0)
    fan_in, units = 512, 512
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((256, fan_in)), tf.float32)
    linear = sg2.FullyConnected(units, lr_mul=lr_mul)
    y = linear(x).numpy()
    # Stored N(0, 1 / lr_mul^2), used times lr_mul / sqrt(fan_in): effective N(0, 1/fan_in),
    # so a unit-variance input gives a unit-variance output.
    assert np.std(linear.kernel.numpy()) == pytest.approx(1 / lr_mul, rel=0.02)
    assert np.var(y) == pytest.approx(1.0, rel=0.05)
    # lrelu(0.2) x sqrt(2): second moment 2 (0.5 + 0.5 x 0.04) = 1.04 of the input's.
    act = sg2.FullyConnected(units, activation="lrelu", lr_mul=lr_mul)
    assert np.mean(np.square(act(x).numpy())) == pytest.approx(1.04, rel=0.05)

    # Gradient of the stored weights = run-time factor x gradient of the effective ones.
    dy = rng.standard_normal((256, units)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(linear(x) * dy)
    g_kernel, g_bias = tape.gradient(loss, [linear.kernel, linear.bias_var])
    gain = lr_mul / math.sqrt(fan_in)
    np.testing.assert_allclose(g_kernel, gain * (x.numpy().T @ dy), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(g_bias, lr_mul * dy.sum(axis=0), rtol=1e-4, atol=1e-4)


def test_conv_output_variance_at_init_gain_and_clamp():
    keras.utils.set_random_seed(1)
    x = tf.constant(np.random.default_rng(1).standard_normal((8, 16, 16, 64)), tf.float32)
    conv = sg2.Conv2dLayer(64, 3)
    y = conv(x).numpy()[:, 1:-1, 1:-1]                       # interior: full receptive field
    assert np.std(conv.kernel.numpy()) == pytest.approx(1.0, rel=0.03)
    assert np.var(y) == pytest.approx(1.0, rel=0.06)
    lrelu = sg2.Conv2dLayer(64, 3, activation="lrelu", gain=math.sqrt(0.5))
    y = lrelu(x).numpy()[:, 1:-1, 1:-1]
    assert np.mean(np.square(y)) == pytest.approx(1.04 * 0.5, rel=0.06)
    # The gradient of the stored kernel is 1 / sqrt(fan_in) x that of the effective kernel.
    with tf.GradientTape(persistent=True) as tape:
        w_eff = tf.constant(conv.kernel.numpy() / math.sqrt(9 * 64))
        tape.watch(w_eff)
        a = tf.reduce_sum(conv(x) ** 2)
        b = tf.reduce_sum(tf.nn.conv2d(x, w_eff, 1, "SAME") ** 2)
    np.testing.assert_allclose(tape.gradient(a, conv.kernel),
                               tape.gradient(b, w_eff) / math.sqrt(9 * 64), rtol=1e-3,
                               atol=1e-3)
    clamped = sg2.Conv2dLayer(8, 3, activation="lrelu", conv_clamp=0.5, gain=math.sqrt(0.5))
    assert np.max(np.abs(clamped(x).numpy())) == pytest.approx(0.5 * math.sqrt(0.5))


# ---- modulation and demodulation ---------------------------------------------------------

def test_demodulation_gives_unit_output_variance():
    rng = np.random.default_rng(2)
    x = tf.constant(rng.standard_normal((4, 32, 32, 64)), tf.float32)
    weight = tf.constant(rng.standard_normal((3, 3, 64, 32)), tf.float32)
    styles = tf.constant(rng.uniform(0.2, 3.0, (4, 64)), tf.float32)   # far from uniform
    y = sg2.modulated_conv2d(x, weight, styles).numpy()[:, 1:-1, 1:-1]
    per_channel = y.reshape(-1, 32).var(axis=0)
    np.testing.assert_allclose(per_channel, 1.0, rtol=0.15)
    assert y.var() == pytest.approx(1.0, rel=0.05)
    # Without demodulation the variance follows the styles and weights instead.
    raw = sg2.modulated_conv2d(x, weight, styles, demodulate=False).numpy()
    assert raw.var() > 10


@pytest.mark.parametrize("up", [1, 2])
def test_modulated_conv_equals_per_sample_kernels(up):
    """The scale-convolve-scale form equals convolving each sample with its own modulated,
    demodulated kernel (NVlabs' fused grouped convolution), computed here in numpy/scipy
    through NVlabs' reference path for up = 2: insert zeros, pad (3, 2), FIR, then a valid
    true convolution (NVlabs does not flip the weight when upsampling)."""
    rng = np.random.default_rng(3)
    b, h, cin, cout = 2, 5, 3, 2
    x = rng.standard_normal((b, h, h, cin)).astype("float32")
    weight = rng.standard_normal((3, 3, cin, cout)).astype("float32")
    styles = rng.standard_normal((b, cin)).astype("float32")
    got = sg2.modulated_conv2d(tf.constant(x), tf.constant(weight), tf.constant(styles),
                               up=up).numpy()
    f = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0 * 4.0        # gain 4 for up = 2
    for n in range(b):
        wk = weight * styles[n][None, None, :, None]               # (3, 3, I, O)
        wk = wk / np.sqrt(np.square(wk).sum(axis=(0, 1, 2)) + 1e-8)
        for o in range(cout):
            out = 0.0
            for i in range(cin):
                img = x[n, :, :, i]
                if up == 1:       # correlation with zero padding 1
                    out = out + signal.correlate2d(np.pad(img, 1), wk[:, :, i, o], "valid")
                else:
                    u = np.zeros((2 * h, 2 * h))
                    u[::2, ::2] = img
                    u = signal.convolve2d(np.pad(u, ((3, 2), (3, 2))), f, "valid")
                    out = out + signal.convolve2d(u, wk[:, :, i, o], "valid")
            np.testing.assert_allclose(got[n, :, :, o], out, rtol=1e-4, atol=1e-4)


def test_downsampling_conv_matches_the_reference_path():
    """NVlabs' 3x3 down conv: FIR with padding 2, then a stride-2 correlation."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 8, 8, 1)).astype("float32")
    w = rng.standard_normal((3, 3, 1, 1)).astype("float32")
    got = sg2.conv2d_resample(tf.constant(x), tf.constant(w), down=2).numpy()[0, :, :, 0]
    f = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0
    filtered = signal.convolve2d(np.pad(x[0, :, :, 0], 2), f, "valid")     # (9, 9)
    want = signal.correlate2d(filtered, w[:, :, 0, 0], "valid")[::2, ::2]  # (4, 4)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# ---- FIR resampling ----------------------------------------------------------------------

def test_fir_upsampling_constant_and_hand_computed_impulse():
    const = tf.fill((1, 6, 6, 2), 3.0)
    up = sg2.upsample2d(const).numpy()
    assert up.shape == (1, 12, 12, 2)
    np.testing.assert_allclose(up[0, 1:-1, 1:-1], 3.0, rtol=1e-6)   # interior stays 3
    # 1-D by hand: zeros inserted after each pixel, padded (2, 1), filtered with
    # [1, 3, 3, 1] / 8 x 2 = [.25, .75, .75, .25]. An impulse at pixel 0 -> [.75, .75, .25,
    # 0, ...]; at pixel 1 -> [0, .25, .75, .75, .25, 0, ...]. In 2-D the outer products.
    a0 = np.array([.75, .75, .25, 0, 0, 0, 0, 0])
    a1 = np.array([0, .25, .75, .75, .25, 0, 0, 0])
    impulse = np.zeros((1, 4, 4, 1), np.float32)
    impulse[0, 0, 1, 0] = 1.0
    got = sg2.upsample2d(tf.constant(impulse)).numpy()[0, :, :, 0]
    np.testing.assert_allclose(got, np.outer(a0, a1), atol=1e-7)
    # The border rows of a constant: 0.75 of it (half the filter falls on the zero padding).
    np.testing.assert_allclose(up[0, 0, 1:-1, 0], 0.75 * 3.0, rtol=1e-6)


def test_fir_downsampling_constant_and_hand_computed_impulse():
    const = tf.fill((1, 8, 8, 1), 2.0)
    down = sg2.downsample2d(const).numpy()
    assert down.shape == (1, 4, 4, 1)
    np.testing.assert_allclose(down[0, 1:-1, 1:-1], 2.0, rtol=1e-6)
    # 1-D: padded (1, 1), filtered with [1, 3, 3, 1] / 8, every 2nd output: an impulse at
    # pixel 1 gives out[0] = 3/8 and out[1] = 1/8.
    impulse = np.zeros((1, 8, 8, 1), np.float32)
    impulse[0, 1, 1, 0] = 1.0
    got = sg2.downsample2d(tf.constant(impulse)).numpy()[0, :, :, 0]
    a = np.array([3 / 8, 1 / 8, 0, 0])
    np.testing.assert_allclose(got, np.outer(a, a), atol=1e-7)


# ---- minibatch standard deviation --------------------------------------------------------

def test_minibatch_std_on_a_hand_made_batch():
    # N = 4, group 2: groups are samples {0, 2} and {1, 3} (strided, as NVlabs' reshape).
    x = np.zeros((4, 2, 2, 2), np.float32)
    x[2] = 2.0                            # group {0, 2}: |0 - 2| / 2 = std 1 everywhere
    x[1] = 1.0
    x[3] = 1.0
    x[3, :, :, 1] = 5.0                   # group {1, 3}: std 0 on channel 0, 2 on channel 1
    y = sg2.MinibatchStd(group_size=2)(tf.constant(x)).numpy()
    assert y.shape == (4, 2, 2, 3)
    np.testing.assert_array_equal(y[..., :2], x)
    eps = math.sqrt(1e-8)                 # sqrt(0 + 1e-8)
    g0 = math.sqrt(1 + 1e-8)
    g1 = (4 * eps + 4 * math.sqrt(4 + 1e-8)) / 8
    np.testing.assert_allclose(y[[0, 2], ..., 2], g0, rtol=1e-6)
    np.testing.assert_allclose(y[[1, 3], ..., 2], g1, rtol=1e-6)
    # Two feature maps: channel groups {0} and {1} each get their own average.
    y2 = sg2.MinibatchStd(group_size=2, num_channels=2)(tf.constant(x)).numpy()
    np.testing.assert_allclose(y2[1, 0, 0, 2:], [eps, math.sqrt(4 + 1e-8)], rtol=1e-5)
    # Group size above the batch: the whole batch is one group (G = min(group, N)).
    whole = sg2.MinibatchStd(group_size=8)(tf.constant(x[:2])).numpy()
    np.testing.assert_allclose(whole[..., 2], math.sqrt(0.25 + 1e-8), rtol=1e-6)  # |0-1|/2


# ---- noise, w_avg, truncation ------------------------------------------------------------

def test_noise_is_an_input_with_zero_strength_at_init():
    rng = np.random.default_rng(5)
    g = sg2.build_generator(16, **TINY_G)
    z = tf.constant(rng.standard_normal((2, 16)), tf.float32)
    a = g([z] + noises_for(16, 2, rng))
    np.testing.assert_array_equal(a, g([z] + noises_for(16, 2, rng)))   # strength 0
    strengths = [v for v in g.trainable_variables if "noise_strength" in v.path]
    assert len(strengths) == len(sg2.noise_shapes(16))
    for v in strengths:
        v.assign(1.0)
    same = noises_for(16, 2, np.random.default_rng(9))
    b = g([z] + same)
    np.testing.assert_array_equal(b, g([z] + same))     # deterministic given the noise
    assert not np.allclose(a, b)


def test_w_avg_is_a_non_trainable_variable_and_truncation():
    g = sg2.build_generator(16, **TINY_G)
    mapping = sg2.get_mapping(g)
    w_avg = sg2.get_w_avg(g)
    assert w_avg is mapping.w_avg is sg2.get_w_avg(mapping)
    assert tuple(w_avg.shape) == (16,) and not w_avg.trainable
    assert any(v is w_avg for v in g.non_trainable_variables)
    assert not any(v is w_avg for v in g.trainable_variables)
    np.testing.assert_array_equal(w_avg.numpy(), 0.0)
    w_avg.assign(np.arange(16, dtype=np.float32))
    ws = tf.ones((2, sg2.num_ws(16), 16))
    np.testing.assert_allclose(sg2.truncate(ws, w_avg, 0.0)[:, 3], np.tile(np.arange(16),
                                                                             (2, 1)))
    half = sg2.truncate(ws, w_avg, 0.5, cutoff=2).numpy()
    np.testing.assert_allclose(half[:, :2], np.broadcast_to(0.5 + 0.5 * np.arange(16), (2, 2, 16)),
                               rtol=1e-6)
    np.testing.assert_array_equal(half[:, 2:], 1.0)


def test_mapping_normalises_z():
    mapping = sg2.build_mapping(16, 16, num_ws=3, num_layers=2)
    z = tf.constant(np.random.default_rng(6).standard_normal((2, 16)), tf.float32)
    # z is normalised to unit second moment first: scaling z changes nothing.
    np.testing.assert_allclose(mapping(z), mapping(7.0 * z), rtol=1e-4, atol=1e-5)


# ---- mixed precision, saving, CLI --------------------------------------------------------

def test_mixed_bfloat16_matches_float32():
    rng = np.random.default_rng(7)
    z = tf.constant(rng.standard_normal((4, 16)), tf.float32)
    noises = noises_for(16, 4, rng)
    g32 = sg2.build_generator(16, conv_clamp=256, **TINY_G)
    d32 = sg2.build_discriminator(16, conv_clamp=256, **TINY_D)
    for v in g32.trainable_variables:
        if "noise_strength" in v.path:
            v.assign(0.5)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        g16 = sg2.build_generator(16, conv_clamp=256, **TINY_G)
        d16 = sg2.build_discriminator(16, conv_clamp=256, **TINY_D)
    finally:
        keras.config.set_dtype_policy("float32")
    assert all(v.dtype == "float32" for v in g16.weights + d16.weights)
    g16.set_weights(g32.get_weights())
    d16.set_weights(d32.get_weights())
    img32, img16 = g32([z] + noises), g16([z] + noises)
    assert img16.dtype == tf.float32 and d16(img16).dtype == tf.float32
    assert sg2.get_mapping(g16)(z).dtype == tf.float32
    err = np.abs(img16.numpy() - img32.numpy()).max() / np.abs(img32.numpy()).max()
    assert err < 0.1
    np.testing.assert_allclose(d16(img32), d32(img32), rtol=0.1, atol=0.05)


def test_gradients_reach_every_weight_and_r1_double_backprop():
    rng = np.random.default_rng(8)
    g = sg2.build_generator(16, num_classes=2, **TINY_G)
    d = sg2.build_discriminator(16, num_classes=2, **TINY_D)
    z = tf.constant(rng.standard_normal((2, 16)), tf.float32)
    c = tf.constant([0, 1])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(d([g([z] + noises_for(16, 2, rng) + [c]), c]))
    grads = tape.gradient(loss, g.trainable_variables)
    assert all(gr is not None for gr in grads)
    x = tf.constant(rng.standard_normal((2, 16, 16, 3)), tf.float32)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            inner.watch(x)
            logits = tf.reduce_sum(d([x, c]))
        r1 = tf.reduce_sum(tf.square(inner.gradient(logits, x)))
    grads = outer.gradient(r1, d.trainable_variables)
    # Only the last bias does not shape the input gradient.
    missing = [v.path for v, gr in zip(d.trainable_variables, grads) if gr is None]
    assert missing == ["b4_out/bias"]


def test_path_length_double_backprop_through_synthesis():
    """Path-length regularisation differentiates grad_ws(sum(img * y)) again, with respect
    to G's weights: every op of the synthesis network needs a second derivative."""
    rng = np.random.default_rng(11)
    g = sg2.build_generator(16, **TINY_G)
    mapping, synthesis = sg2.get_mapping(g), sg2.get_synthesis(g)
    z = tf.constant(rng.standard_normal((2, 16)), tf.float32)
    noises = noises_for(16, 2, rng)
    y = tf.constant(rng.standard_normal((2, 16, 16, 3)) / 16.0, tf.float32)
    with tf.GradientTape() as outer:
        ws = mapping(z)
        with tf.GradientTape() as inner:
            inner.watch(ws)
            out = tf.reduce_sum(synthesis([ws] + noises) * y)
        lengths = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(inner.gradient(out, ws)),
                                                       axis=2), axis=1))
        penalty = tf.reduce_sum(tf.square(lengths - 1.0))
    grads = outer.gradient(penalty, g.trainable_variables)
    assert np.isfinite(float(penalty))
    # Only the ToRGB biases leave the gradient with respect to ws unchanged.
    missing = sorted(v.path for v, gr in zip(g.trainable_variables, grads) if gr is None)
    assert missing == ["b16_torgb/bias", "b4_torgb/bias", "b8_torgb/bias"]


def test_keras_file_round_trip(tmp_path):
    rng = np.random.default_rng(10)
    g = sg2.build_generator(16, **TINY_G)
    sg2.get_w_avg(g).assign(np.full(16, 0.25, np.float32))
    path = str(tmp_path / "g.keras")
    g.save(path)
    loaded = keras.models.load_model(path)
    inputs = [tf.constant(rng.standard_normal((2, 16)), tf.float32)] + noises_for(16, 2, rng)
    np.testing.assert_array_equal(loaded(inputs), g(inputs))
    assert isinstance(sg2.get_mapping(loaded), sg2.MappingNetwork)
    np.testing.assert_array_equal(sg2.get_mapping(loaded).w_avg.numpy(), 0.25)


def test_cli_summary_and_bad_config(capsys):
    assert sg2.main(["--summary", "16", "--channel-base", "128", "--classes", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6
    g, d = sg2.build_pair(16, "auto", channel_base=128)
    assert lines[0].startswith(f"stylegan2 generator 16px: {count_params(g):,} params, "
                               f"output (16, 16, 3), ")
    assert lines[1] == "stylegan2 mapping: 525,312 params, output (6, 512)"
    assert lines[2].startswith(f"stylegan2 discriminator 16px: {count_params(d):,} params")
    assert lines[3].startswith("stylegan2 generator, conditional on 2 classes, 16px: ")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(sg2.main, ["--summary", "100"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: StyleGAN2 resolution must be")
