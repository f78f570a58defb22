"""DCGAN builders: authors' parameter counts, shapes, initialisation, saving, FLOPs, CLI."""
import keras
import numpy as np
import pytest

import dcgan
from skingan.errors import UserError, run_cli
from skingan.model_summary import count_flops, count_params, summary_line




def latents(batch=2, latent_dim=100, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, latent_dim)).astype("float32")


def test_channel_table():
    assert dcgan.channel_table(64) == {4: 512, 8: 256, 16: 128, 32: 64}
    assert dcgan.channel_table(32) == {4: 256, 8: 128, 16: 64}
    # Capped at 8 x base_filters.
    assert dcgan.channel_table(256) == {4: 512, 8: 512, 16: 512, 32: 256, 64: 128, 128: 64}
    assert dcgan.channel_table(16, base_filters=4) == {4: 8, 8: 4}


def test_trainable_parameters_equal_the_authors_at_64():
    generator = dcgan.build_generator(64)
    discriminator = dcgan.build_discriminator(64)
    assert count_params(generator) == 3_576_704
    assert count_params(discriminator) == 2_765_568
    # No biases anywhere: only kernels and BatchNorm gamma/beta are trainable.
    for model in (generator, discriminator):
        for layer in model.layers:
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
                assert layer.bias is None, layer.name
    # BatchNorm on every D block but the first.
    bn = [l.name for l in discriminator.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert bn == ["d16_bn", "d8_bn", "d4_bn"]


@pytest.mark.parametrize("resolution", [16, 32, 64, 128])
def test_output_shapes_and_range(resolution):
    generator = dcgan.build_generator(resolution, latent_dim=16, base_filters=4)
    discriminator = dcgan.build_discriminator(resolution, base_filters=4)
    # training=True: BatchNorm uses batch statistics. (In inference mode an untrained G's
    # moving averages are still 0/1 and the N(0, 0.02) weights shrink the signal to ~1e-7.)
    images = keras.ops.convert_to_numpy(generator(latents(3, 16), training=True))
    assert images.shape == (3, resolution, resolution, 3)
    assert images.dtype == np.float32
    assert images.min() >= dcgan.VALUE_RANGE[0] and images.max() <= dcgan.VALUE_RANGE[1]
    assert images.std() > 1e-4
    logits = keras.ops.convert_to_numpy(discriminator(images, training=False))
    assert logits.shape == (3, 1)
    assert np.all(np.isfinite(logits))


def test_initialisation_statistics():
    generator = dcgan.build_generator(64)
    discriminator = dcgan.build_discriminator(64)
    kernels, gammas, betas = [], [], []
    for model in (generator, discriminator):
        for layer in model.layers:
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
                kernels.append(keras.ops.convert_to_numpy(layer.kernel).ravel())
            if isinstance(layer, keras.layers.BatchNormalization):
                gammas.append(keras.ops.convert_to_numpy(layer.gamma))
                betas.append(keras.ops.convert_to_numpy(layer.beta))
    kernels = np.concatenate(kernels)  # ~6.3 M samples of N(0, 0.02)
    assert abs(kernels.mean()) < 1e-4
    assert kernels.std() == pytest.approx(0.02, rel=0.01)
    # Per layer too (a glorot/he default would be far off in the big layers).
    gammas = np.concatenate(gammas)  # 2,816 samples of N(1, 0.02)
    assert gammas.mean() == pytest.approx(1.0, abs=0.003)
    assert gammas.std() == pytest.approx(0.02, rel=0.1)
    assert np.all(np.concatenate(betas) == 0.0)
    big = generator.get_layer("g8_convt").kernel  # 4*4*256*512 values
    assert float(keras.ops.std(big)) == pytest.approx(0.02, rel=0.01)


def test_keras_round_trip_gives_identical_outputs(tmp_path):
    generator = dcgan.build_generator(32, latent_dim=16, base_filters=4)
    discriminator = dcgan.build_discriminator(32, base_filters=4)
    generator.save(tmp_path / "g.keras")
    discriminator.save(tmp_path / "d.keras")
    g2 = keras.models.load_model(tmp_path / "g.keras")
    d2 = keras.models.load_model(tmp_path / "d.keras")
    z = latents(2, 16)
    images = generator(z, training=False)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(g2(z, training=False)), keras.ops.convert_to_numpy(images)
    )
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(d2(images, training=False)),
        keras.ops.convert_to_numpy(discriminator(images, training=False)),
    )


def _bn_inputs(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((6, 5, 5, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -3.0]).astype("float32")


@pytest.mark.parametrize("synchronized", [False, True])
def test_batchnorm_training_step_is_pytorchs(synchronized):
    # torch.nn.BatchNorm2d in training mode, written out: normalise with the biased batch
    # variance, update running_var with the unbiased one (n = 6 * 5 * 5 = 150 per channel).
    x = _bn_inputs()
    layer = dcgan._batch_norm("bn", synchronized)
    assert isinstance(layer, dcgan.BatchNorm)
    layer.build(x.shape)
    layer.gamma.assign([1.5, 0.5, 2.0])
    layer.beta.assign([0.1, -0.2, 0.3])
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    expected = (x - mean) / np.sqrt(var + 1e-5) * [1.5, 0.5, 2.0] + [0.1, -0.2, 0.3]
    np.testing.assert_allclose(y, expected, atol=2e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_mean), 0.1 * mean,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_variance),
                               0.9 + 0.1 * var * 150 / 149, rtol=1e-5)
    # Inference normalises with the moving statistics.
    moving_mean = keras.ops.convert_to_numpy(layer.moving_mean)
    moving_var = keras.ops.convert_to_numpy(layer.moving_variance)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x, training=False)),
        (x - moving_mean) / np.sqrt(moving_var + 1e-5) * [1.5, 0.5, 2.0] + [0.1, -0.2, 0.3],
        atol=2e-5)


def test_batchnorm_gradients_equal_keras_batchnorm():
    # The fused kernel's gradient equals the gradient through Keras' element-wise layer.
    import tensorflow as tf
    x = tf.constant(_bn_inputs(1))
    upstream = tf.constant(np.random.default_rng(2).standard_normal(x.shape).astype("float32"))
    grads = []
    for layer in (dcgan._batch_norm("fused"), keras.layers.BatchNormalization(epsilon=1e-5)):
        layer.build(x.shape)
        layer.gamma.assign([1.5, 0.5, 2.0])
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * upstream)
        grads.append([g.numpy() for g in tape.gradient(loss, [x, layer.gamma, layer.beta])])
    for fused, reference in zip(*grads):
        np.testing.assert_allclose(fused, reference, atol=1e-4)


@pytest.mark.parametrize("resolution", [0, 8, 48, 100, 512, 64.0, "64", None])
def test_bad_resolutions_are_refused(resolution):
    with pytest.raises(UserError, match=r"16, 32, 64, 128, 256"):
        dcgan.build_generator(resolution)
    with pytest.raises(UserError, match=r"power of two from 16 to 256"):
        dcgan.build_discriminator(resolution)
    with pytest.raises(UserError, match="base_filters"):
        dcgan.build_generator(64, base_filters=0)


def test_mixed_precision_outputs_float32(mixed_bfloat16):
    generator = dcgan.build_generator(32, latent_dim=16, base_filters=4)
    discriminator = dcgan.build_discriminator(32, base_filters=4)
    assert generator.get_layer("g8_convt").compute_dtype == "bfloat16"
    images = generator(latents(2, 16), training=True)
    logits = discriminator(images, training=True)
    assert images.dtype == "float32" and logits.dtype == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(logits)))
    images = keras.ops.convert_to_numpy(images)
    assert images.min() >= -1.0 and images.max() <= 1.0


def test_flops_of_the_64px_networks_by_hand():
    # Generator: a transposed conv costs H_in * W_in * 4*4 * C_in * C_out MACs.
    g_macs = (1 * 1 * 16 * 100 * 512 + 4 * 4 * 16 * 512 * 256 + 8 * 8 * 16 * 256 * 128
              + 16 * 16 * 16 * 128 * 64 + 32 * 32 * 16 * 64 * 3)
    # Discriminator: a conv costs H_out * W_out * 4*4 * C_in * C_out MACs.
    d_macs = (32 * 32 * 16 * 3 * 64 + 16 * 16 * 16 * 64 * 128 + 8 * 8 * 16 * 128 * 256
              + 4 * 4 * 16 * 256 * 512 + 1 * 1 * 16 * 512 * 1)
    assert count_flops(dcgan.build_generator(64)) == 2 * g_macs  # 209,305,600
    assert count_flops(dcgan.build_discriminator(64)) == 2 * d_macs


def test_cli_summary_in_process(capsys):
    assert dcgan.main(["--summary", "16", "--base-filters", "4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("dcgan generator 16px: ")
    assert lines[0].split(": ")[1].startswith(
        f"{count_params(dcgan.build_generator(16, base_filters=4)):,} params, output (16, 16, 3)")
    assert lines[1].startswith("dcgan discriminator 16px: ")
    assert summary_line(dcgan.build_generator(64)).startswith(
        "dcgan generator 64px: 3,576,704 params, output (64, 64, 3), 209.3 MFLOPs/image")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(dcgan.main, ["--summary", "48"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: DCGAN resolution must be")
