"""SL-StyleGAN builders: authors' parameter counts, shapes, AdaIN maths, noise, saving, CLI.

Tiny models (channel_scale, small w_dim) keep everything but the count checks fast on CPU.
Also tests model_summary (FLOPs on a hand-computable model, the summary line).
"""
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import SL_StyleGAN as sl
from skingan.errors import UserError, run_cli
from skingan.model_summary import count_flops, count_params, summary_line
from conftest import ROOT


# Small enough to run forward passes in milliseconds: 4x4 constant of 8 channels, 1-2
# channels near the image, 16-d style.
TINY = dict(latent_dim=8, w_dim=16, mapping_layers=2, channel_scale=1 / 64)


def tiny_generator(resolution=16):
    return sl.build_generator(resolution, **TINY)


def inputs(resolution, batch=2, seed=0, latent_dim=8):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((batch, latent_dim)).astype("float32")
    noise = rng.standard_normal((batch, resolution, resolution, 1)).astype("float32")
    return z, noise




# ---- architecture -----------------------------------------------------------------------

def test_channel_table_at_256_is_the_papers():
    assert sl.channel_table(256) == {
        4: 512, 8: 256, 16: 192, 32: 128, 64: 64, 128: 32, 256: 16
    }
    assert sl.channel_table(1024) == {
        4: 512, 8: 512, 16: 384, 32: 256, 64: 192, 128: 128, 256: 64, 512: 32, 1024: 16
    }
    # channel_scale multiplies every entry, rounded, never below 1.
    assert sl.channel_table(32, channel_scale=0.25) == {4: 128, 8: 16, 16: 8, 32: 4}
    assert sl.channel_table(32, channel_scale=1e-3) == {4: 1, 8: 1, 16: 1, 32: 1}
    assert sl.channel_table(np.int64(16)) == {4: 512, 8: 32, 16: 16}  # numpy ints welcome


@pytest.mark.parametrize(
    "resolution, g_params, d_params",
    [(256, 9_266_195, 2_404_113), (64, 6_169_235, 555_921), (32, 5_389_715, 203_409)],
)
def test_trainable_parameters_equal_the_authors(resolution, g_params, d_params):
    generator = sl.build_generator(resolution)
    assert count_params(generator) == g_params
    # The learned constant is inside the model: 4*4*512 kernel + 4*4*512 bias.
    const = sl.get_synthesis(generator).get_layer("const")
    assert sum(int(np.prod(v.shape)) for v in const.trainable_weights) == 16_384
    assert count_params(sl.get_mapping(generator)) + count_params(
        sl.get_synthesis(generator)
    ) == g_params
    assert count_params(sl.build_discriminator(resolution)) == d_params


@pytest.mark.parametrize("resolution", [8, 16, 32])
def test_output_shapes_and_range(resolution):
    generator = tiny_generator(resolution)
    assert [tuple(t.shape) for t in generator.inputs] == [
        (None, 8), (None, resolution, resolution, 1)
    ]
    z, noise = inputs(resolution, batch=3)
    images = keras.ops.convert_to_numpy(generator([z, noise]))
    assert images.shape == (3, resolution, resolution, 3)
    assert images.dtype == np.float32
    assert images.min() >= sl.VALUE_RANGE[0] and images.max() <= sl.VALUE_RANGE[1]
    assert images.std() > 1e-3  # not a constant image

    discriminator = sl.build_discriminator(resolution, channel_scale=1 / 8)
    logits = keras.ops.convert_to_numpy(discriminator(images, training=False))
    assert logits.shape == (3, 1)
    assert np.all(np.isfinite(logits))
    # The last feature map before Flatten is always 4x4.
    assert tuple(discriminator.get_layer("flatten").input.shape[1:3]) == (4, 4)


def test_adain_gives_each_channel_mean_beta_and_std_gamma():
    rng = np.random.default_rng(1)
    # Channels with very different offsets and scales.
    x = (rng.standard_normal((2, 8, 8, 5)) * rng.uniform(0.1, 10, (1, 1, 1, 5))
         + rng.uniform(-50, 50, (1, 1, 1, 5))).astype("float32")
    gamma = rng.uniform(0.5, 2.0, (2, 5)).astype("float32")
    beta = rng.standard_normal((2, 5)).astype("float32")
    out = keras.ops.convert_to_numpy(sl.AdaIN()([x, gamma, beta]))
    assert out.shape == x.shape
    np.testing.assert_allclose(out.mean(axis=(1, 2)), beta, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(1, 2)), gamma, rtol=1e-4)
    # Normalisation is per image: changing image 1 leaves image 0's output alone.
    x2 = x.copy()
    x2[1] *= 3.0
    out2 = keras.ops.convert_to_numpy(sl.AdaIN()([x2, gamma, beta]))
    np.testing.assert_allclose(out2[0], out[0], atol=1e-6)


def adain_by_autodiff(x, gamma, beta, epsilon=1e-8):
    """AdaIN as the layer computed it before its hand-written gradient (the authors' formula,
    differentiated by TensorFlow): the reference for the two tests below."""
    mean = keras.ops.mean(x, axis=(1, 2), keepdims=True)
    centred = x - mean
    std = keras.ops.sqrt(keras.ops.mean(keras.ops.square(centred), axis=(1, 2), keepdims=True))
    return centred / (std + epsilon) * gamma[:, None, None, :] + beta[:, None, None, :]


def test_adain_output_and_gradients_equal_the_autodiff_formula():
    import tensorflow as tf
    rng = np.random.default_rng(3)
    x = tf.constant((rng.standard_normal((3, 8, 8, 5)) * rng.uniform(0.1, 10, (1, 1, 1, 5))
                     + rng.uniform(-50, 50, (1, 1, 1, 5))).astype("float32"))
    gamma = tf.constant(rng.uniform(-2.0, 2.0, (3, 5)).astype("float32"))
    beta = tf.constant(rng.standard_normal((3, 5)).astype("float32"))
    upstream = tf.constant(rng.standard_normal((3, 8, 8, 5)).astype("float32"))
    results = []
    for fn in (lambda a, g, b: sl.AdaIN()([a, g, b]), adain_by_autodiff):
        with tf.GradientTape() as tape:
            tape.watch([x, gamma, beta])
            out = fn(x, gamma, beta)
            loss = tf.reduce_sum(out * upstream)
        results.append([out] + tape.gradient(loss, [x, gamma, beta]))
    for name, new, ref in zip(("output", "d x", "d gamma", "d beta"), *results):
        ref = keras.ops.convert_to_numpy(ref)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(new), ref, rtol=1e-5,
                                   atol=1e-5 * np.abs(ref).max(), err_msg=name)


@pytest.mark.slow
def test_training_steps_equal_those_with_the_autodiff_adain(monkeypatch):
    """Three SL-StyleGAN train steps (same seeds, same batch) with the hand-written AdaIN
    gradient and with the autodiff one give the same losses and weights to float tolerance."""
    import tensorflow as tf

    from skingan.components import build_components
    from skingan.config import new_run_settings

    def train_three_steps():
        cfg = new_run_settings(dict(model="sl-stylegan", data="unused", resolution=16,
                                    channel_scale=0.125, batch_size=4))
        parts = build_components(cfg)
        real = tf.random.stateless_uniform((4, 16, 16, 3), seed=(1, 2))
        losses = [{k: float(v) for k, v in parts.train_step(real).items()} for _ in range(3)]
        return losses, [v.numpy() for v in parts.generator.trainable_variables
                        + parts.discriminator.trainable_variables]

    new_losses, new_weights = train_three_steps()
    monkeypatch.setattr(sl.AdaIN, "call", lambda self, inputs: adain_by_autodiff(
        *inputs, epsilon=self.epsilon))
    ref_losses, ref_weights = train_three_steps()
    for new, ref in zip(new_losses, ref_losses):
        assert new.keys() == ref.keys()
        for key in new:
            assert new[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-5), key
    assert len(new_weights) == len(ref_weights) > 50
    for new, ref in zip(new_weights, ref_weights):
        np.testing.assert_allclose(new, ref, rtol=1e-4, atol=1e-5)


def test_noise_reaches_the_image():
    generator = tiny_generator(16)
    z, noise = inputs(16)
    _, other_noise = inputs(16, seed=1)
    a = keras.ops.convert_to_numpy(generator([z, noise]))
    b = keras.ops.convert_to_numpy(generator([z, noise]))
    c = keras.ops.convert_to_numpy(generator([z, other_noise]))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_every_weight_gets_a_finite_nonzero_gradient():
    import tensorflow as tf

    # Fixed weights and dropout masks: with an unlucky draw a tiny D can zero a weight's
    # whole gradient (every ReLU unit it feeds dropped or inactive on this batch).
    keras.utils.set_random_seed(0)
    generator = tiny_generator(16)
    discriminator = sl.build_discriminator(16, channel_scale=1 / 8)
    z, noise = inputs(16, batch=4)
    with tf.GradientTape() as tape:
        logits = discriminator(generator([z, noise], training=True), training=True)
        loss = tf.reduce_mean(tf.square(logits))
    variables = generator.trainable_variables + discriminator.trainable_variables
    grads = tape.gradient(loss, variables)
    grads = {v.path: g for v, g in zip(variables, grads)}
    for path, grad in grads.items():
        assert grad is not None, path  # e.g. the constant, every noise conv
        grad = keras.ops.convert_to_numpy(grad)
        assert np.all(np.isfinite(grad)), path
        # A per-channel bias added just before an instance norm is removed again by its mean
        # subtraction: the biases of the synthesis convs and of the noise convs get a zero
        # gradient (up to rounding). They are in the authors' counts but do nothing.
        layer, _ = path.rsplit("/", 1)
        in_synthesis_block = layer.startswith("g") and ("_conv" in layer or "_noise" in layer)
        if path.endswith("/bias") and in_synthesis_block:
            kernel_grad = keras.ops.convert_to_numpy(grads[layer + "/kernel"])
            assert np.abs(grad).max() <= 1e-4 * np.abs(kernel_grad).max(), path
        else:
            assert np.any(grad != 0), path


def test_mapping_and_synthesis_compose_to_the_generator():
    generator = tiny_generator(16)
    mapping, synthesis = sl.get_mapping(generator), sl.get_synthesis(generator)
    assert mapping.name == "mapping" and synthesis.name == "synthesis"
    z, noise = inputs(16)
    # Keras refuses a [tensor, ndarray] mix in one call, and w is a tensor.
    z, noise = keras.ops.convert_to_tensor(z), keras.ops.convert_to_tensor(noise)
    w = mapping(z)
    assert tuple(w.shape) == (2, 16)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(synthesis([w, noise])),
        keras.ops.convert_to_numpy(generator([z, noise])),
        atol=1e-6,
    )
    # Truncation with psi = 0 maps every z to w_avg: identical images for identical noise.
    w_avg = keras.ops.mean(w, axis=0, keepdims=True)
    same = keras.ops.convert_to_numpy(synthesis([
        keras.ops.repeat(w_avg, 2, axis=0),
        keras.ops.repeat(noise[:1], 2, axis=0),
    ]))
    np.testing.assert_allclose(same[0], same[1], atol=1e-6)


def test_keras_round_trip_gives_identical_outputs(tmp_path):
    generator = tiny_generator(16)
    discriminator = sl.build_discriminator(16, channel_scale=1 / 8)
    generator.save(tmp_path / "g.keras")
    discriminator.save(tmp_path / "d.keras")
    g2 = keras.models.load_model(tmp_path / "g.keras")
    d2 = keras.models.load_model(tmp_path / "d.keras")
    z, noise = inputs(16)
    images = generator([z, noise])
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(g2([z, noise])), keras.ops.convert_to_numpy(images)
    )
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(d2(images, training=False)),
        keras.ops.convert_to_numpy(discriminator(images, training=False)),
    )
    # The nested models and the custom layers survive.
    assert isinstance(sl.get_synthesis(g2).get_layer("g16_1_adain"), sl.AdaIN)
    assert count_params(sl.get_mapping(g2)) == count_params(sl.get_mapping(generator))


@pytest.mark.parametrize("resolution", [0, 4, 7, 48, 100, 2048, 256.0, "256", True])
def test_bad_resolutions_are_refused(resolution):
    with pytest.raises(UserError, match=r"power of two from 8 to 1024"):
        sl.build_generator(resolution)
    with pytest.raises(UserError, match=r"8, 16, 32, 64, 128, 256, 512, 1024"):
        sl.build_discriminator(resolution)


def test_bad_sizes_are_refused():
    with pytest.raises(UserError, match="channel_scale"):
        sl.build_generator(16, channel_scale=0)
    with pytest.raises(UserError, match="latent_dim"):
        sl.build_generator(16, latent_dim=0)
    with pytest.raises(UserError, match="dropout"):
        sl.build_discriminator(16, dropout=1.0)


def test_mixed_precision_builds_runs_and_outputs_float32(mixed_bfloat16):
    generator = tiny_generator(16)
    discriminator = sl.build_discriminator(16, channel_scale=1 / 8)
    synthesis = sl.get_synthesis(generator)
    assert synthesis.get_layer("g16_conv1").compute_dtype == "bfloat16"
    # w leaves the mapping network in float32 (for w_avg and truncation).
    assert sl.get_mapping(generator).outputs[0].dtype == "float32"
    z, noise = inputs(16)
    images = generator([z, noise])
    logits = discriminator(images, training=False)
    assert images.dtype == "float32" and logits.dtype == "float32"
    images = keras.ops.convert_to_numpy(images)
    assert np.all(np.isfinite(images))
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(logits)))


def test_adain_statistics_in_float32_under_mixed_precision(mixed_bfloat16):
    rng = np.random.default_rng(2)
    # Inputs exactly representable in bf16, so the only difference is the arithmetic.
    cast = lambda a: keras.ops.convert_to_numpy(  # noqa: E731
        keras.ops.cast(keras.ops.cast(a, "bfloat16"), "float32"))
    x = cast(rng.standard_normal((2, 4, 4, 3)) * 0.01 + 3.0)  # small spread on a big offset
    gamma = cast(rng.uniform(0.5, 2, (2, 3)))
    beta = cast(rng.standard_normal((2, 3)))
    layer = sl.AdaIN()
    assert layer.compute_dtype == "bfloat16"
    out = keras.ops.cast(layer([x, gamma, beta]), "float32")
    reference = keras.ops.convert_to_numpy(sl.AdaIN(dtype="float32")([x, gamma, beta]))
    # Only the final cast to bf16 (8-bit mantissa) separates the two.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), reference, rtol=1e-2, atol=2e-2)


# ---- model_summary ----------------------------------------------------------------------

def test_count_flops_by_hand_including_nested_models():
    image = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(5, 3, padding="same")(image)  # 2 * 8*8 * 5 * 3*3*2 = 11,520
    x = keras.layers.Conv2DTranspose(4, 2, strides=2)(x)  # 2 * 8*8 * 2*2*5*4 = 10,240
    x = keras.layers.Flatten()(x)  # 16*16*4 = 1,024 values
    x = keras.layers.Dense(3)(x)  # 2 * 1,024 * 3 = 6,144
    inner = keras.Model(image, x)
    assert count_flops(inner) == 11_520 + 10_240 + 6_144
    outer_in = keras.Input((8, 8, 2))
    h = inner(outer_in)
    out = keras.layers.Dense(7)(h)  # 2 * 3 * 7 = 42
    assert count_flops(keras.Model(outer_in, out)) == 11_520 + 10_240 + 6_144 + 42


def traced_step_flops(graph, outputs, batch):
    """FLOPs per image of the convolutions and matmuls a traced train step really runs: every
    Conv2D, Conv2DBackpropInput / Filter and MatMul whose result is used (tape.gradient
    also builds gradients nobody asked for, e.g. D's weights in G's update, which the
    runtime prunes; so do we). Each costs 2 x (its output or incoming-gradient size) x
    (kernel height x width x input channels), a MatMul 2 x M x K x N."""
    live, todo = set(), [t.op for t in outputs] + [
        op for op in graph.get_operations() if op._is_stateful or not op.outputs]
    while todo:
        op = todo.pop()
        if op not in live:
            live.add(op)
            todo += [t.op for t in op.inputs] + list(op.control_inputs)
    total = 0
    for op in live:
        if op.type == "Conv2D":
            kh, kw, cin, _ = op.inputs[1].shape.as_list()
            total += 2 * np.prod(op.outputs[0].shape.as_list()) * kh * kw * cin
        elif op.type in ("Conv2DBackpropInput", "Conv2DBackpropFilter"):
            kernel = op.inputs[1] if op.type == "Conv2DBackpropInput" else op.outputs[0]
            kh, kw, cin, _ = kernel.shape.as_list()
            total += 2 * np.prod(op.inputs[2].shape.as_list()) * kh * kw * cin
        elif op.type == "MatMul":
            (a0, a1), (b0, b1) = op.inputs[0].shape.as_list(), op.inputs[1].shape.as_list()
            m, k = (a1, a0) if op.get_attr("transpose_a") else (a0, a1)
            total += 2 * m * k * (b0 if op.get_attr("transpose_b") else b1)
    return total / batch


@pytest.mark.parametrize("model, resolution, scale", [("sl-stylegan", 16, 0.125),
                                                       ("dcgan", 64, 1.0)])
def test_train_step_flops_match_the_traced_step(model, resolution, scale):
    import tensorflow as tf

    from skingan.components import build_components
    from skingan.config import new_run_settings
    from skingan.model_summary import train_step_flops
    cfg = new_run_settings(dict(model=model, data="unused", resolution=resolution,
                                channel_scale=scale, batch_size=4))
    parts = build_components(cfg)
    accounting = train_step_flops(model, parts.generator, parts.discriminator,
                                  cfg.get("r1_every"))
    analytic = sum(f for _, f in accounting)
    f_g, f_d = count_flops(parts.generator), count_flops(parts.discriminator)
    if model == "sl-stylegan":
        assert analytic == pytest.approx(4 * f_g + 11 * f_d)
        lazy = train_step_flops(model, parts.generator, parts.discriminator, r1_every=4)
        assert sum(f for _, f in lazy) == pytest.approx(4 * f_g + (8 + 3 / 4) * f_d)
    else:
        assert analytic == pytest.approx(3 * f_g + 8 * f_d)
    step = parts.train_step.get_concrete_function(
        tf.TensorSpec((4, resolution, resolution, 3), tf.float32))
    traced = traced_step_flops(step.graph, step.outputs, 4)
    # the accounting leaves out only the input gradients of D's first layer that nothing
    # needs (on the real images; on the fakes of D's update)
    assert 0.98 * analytic <= traced <= analytic


def test_summary_line():
    line = summary_line(sl.build_discriminator(32))
    assert line.startswith("sl-stylegan discriminator 32px: 203,409 params, output (1,), ")
    assert line.endswith("MFLOPs/image")


@pytest.mark.slow
def test_cli_summary_and_bad_resolution(capsys):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "SL_StyleGAN.py"), "--summary", "32"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("sl-stylegan generator 32px: 5,389,715 params, output (32, 32, 3)")
    assert lines[1].startswith("sl-stylegan discriminator 32px: 203,409 params")
    # A bad resolution: one line on stderr, exit code 2 (in-process, no second TF start-up).
    with pytest.raises(SystemExit) as exit_info:
        run_cli(sl.main, ["--summary", "100"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: SL-StyleGAN resolution must be")
