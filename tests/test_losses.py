"""Losses on fixed logits against values computed by hand, and R1 on a known gradient."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from skingan import losses

REAL = np.array([[1.0], [0.0], [2.0]], np.float32)
FAKE = np.array([[-1.0], [1.0], [0.5]], np.float32)


def softplus(x):
    return np.log1p(np.exp(x))


def test_lsgan_discriminator_loss_is_the_authors_mse_pair():
    # mean((D(x) - 1)^2) = (0 + 1 + 1) / 3; mean((D(G(z)) + 1)^2) = (0 + 4 + 2.25) / 3
    expected = 2.0 / 3.0 + 6.25 / 3.0
    assert losses.lsgan_discriminator_loss(REAL, FAKE).numpy() == pytest.approx(expected, 1e-6)


def test_lsgan_generator_loss_aims_at_zero():
    # mean(D(G(z))^2) = (1 + 1 + 0.25) / 3
    assert losses.lsgan_generator_loss(FAKE).numpy() == pytest.approx(2.25 / 3.0, 1e-6)
    assert losses.lsgan_generator_loss(np.zeros((4, 1), np.float32)).numpy() == 0.0


def test_bce_discriminator_loss():
    # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f)
    expected = np.mean(softplus(-REAL)) + np.mean(softplus(FAKE))
    assert losses.bce_discriminator_loss(REAL, FAKE).numpy() == pytest.approx(expected, 1e-6)


def test_bce_generator_loss_is_non_saturating():
    expected = np.mean(softplus(-FAKE))
    assert losses.bce_generator_loss(FAKE).numpy() == pytest.approx(expected, 1e-6)


def test_discriminator_accuracy_uses_zero_as_boundary():
    real_acc, fake_acc = losses.discriminator_accuracy(REAL, FAKE)
    assert real_acc.numpy() == pytest.approx(2 / 3)   # 1 and 2 are > 0, 0 is not
    assert fake_acc.numpy() == pytest.approx(1 / 3)   # only -1 is < 0


def test_r1_on_a_linear_discriminator_with_known_gradient():
    # D(x) = sum(a * x) has grad_x D = a for every image, so R1 = 5 * sum(a^2).
    a = np.arange(1, 13, dtype=np.float32).reshape(2, 2, 3) / 10.0
    inputs = keras.Input((2, 2, 3))
    flat = keras.layers.Flatten()(inputs)
    dense = keras.layers.Dense(1, use_bias=False)
    d = keras.Model(inputs, dense(flat))
    dense.set_weights([a.reshape(12, 1)])
    x = tf.constant(np.random.RandomState(0).normal(size=(4, 2, 2, 3)), tf.float32)
    logits, r1 = losses.discriminator_with_r1(d, x)
    assert logits.shape == (4, 1)
    assert r1.numpy() == pytest.approx(5.0 * np.sum(a ** 2), rel=1e-5)


def test_r1_takes_any_critic_callable_and_leaves_its_other_inputs_alone():
    # A plain function of the images, closing over a per-image scale c_i as a conditional
    # critic closes over labels: D(x_i) = c_i * sum(a * x_i), grad = c_i * a, so
    # R1 = 5 * mean_i c_i^2 * sum(a^2); c is not differentiated.
    a = tf.constant(np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(2, 2, 3))
    c = tf.constant([1.0, 2.0, 3.0], tf.float32)

    def critic(images):
        return c[:, None] * tf.reduce_sum(a * images, axis=[1, 2, 3])[:, None]   # (3, 1)
    x = tf.constant(np.random.RandomState(2).normal(size=(3, 2, 2, 3)), tf.float32)
    logits, r1 = losses.discriminator_with_r1(critic, x, weight=5.0)
    np.testing.assert_allclose(logits.numpy(), critic(x).numpy())
    expected = 5.0 * np.mean(np.array([1.0, 4.0, 9.0])) * np.sum(a.numpy() ** 2)
    assert r1.numpy() == pytest.approx(expected, rel=1e-5)


def test_r1_on_a_quadratic_discriminator_depends_on_each_image():
    # D(x) = 0.5 * sum(x^2) has grad_x D = x, so R1 = 5 * mean_i sum(x_i^2).
    inputs = keras.Input((3, 3, 1))
    out = keras.layers.Lambda(lambda t: 0.5 * tf.reduce_sum(t ** 2, axis=[1, 2, 3])[:, None])(
        inputs)
    d = keras.Model(inputs, out)
    x = np.random.RandomState(1).normal(size=(5, 3, 3, 1)).astype(np.float32)
    _, r1 = losses.discriminator_with_r1(d, tf.constant(x))
    expected = 5.0 * np.mean(np.sum(x ** 2, axis=(1, 2, 3)))
    assert r1.numpy() == pytest.approx(expected, rel=1e-5)


def test_r1_penalty_is_differentiable_with_respect_to_weights():
    # The nested tape must let an outer tape see the penalty's dependence on D's weights:
    # for D(x) = sum(a * x), R1 = 5 * sum(a^2), so dR1/da = 10 * a.
    inputs = keras.Input((4,))
    dense = keras.layers.Dense(1, use_bias=False)
    d = keras.Model(inputs, dense(inputs))
    a = np.array([[0.5], [-1.0], [2.0], [0.0]], np.float32)
    dense.set_weights([a])
    x = tf.constant(np.ones((3, 4), np.float32))
    with tf.GradientTape() as tape:
        _, r1 = losses.discriminator_with_r1(d, x)
    grad = tape.gradient(r1, dense.kernel)
    np.testing.assert_allclose(grad.numpy(), 10.0 * a, rtol=1e-5)
