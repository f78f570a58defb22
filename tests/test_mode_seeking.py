"""--mode-seeking: MSGAN's regulariser on G (Mao et al. 2019), for a conditional GAN that
ignores z. The term against hand-computed values, what it changes in a step (and that 0
changes nothing), and the setting's path from the command line to a resumed run."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import train
from skingan import losses, steps
from skingan.components import build_components, make_train_step
from skingan.config import new_run_settings
from skingan.errors import UserError
from skingan.runs import RunFolder
from conftest import ROOT

tf.config.experimental.enable_op_determinism()


# ---- the term --------------------------------------------------------------------------

# four 1 x 1 two-channel images and their 2-d latents; pairs (rows 0, 1) and (2, 3)
IMAGES = np.array([[0, 0], [1, 3], [2, 2], [2, 0]], np.float32).reshape(4, 1, 1, 2)
Z = np.array([[0, 0], [1, 1], [0, 0], [2, 0]], np.float32)


def test_the_ratio_is_the_mean_image_gap_over_the_mean_latent_gap():
    # |x0 - x1| = (1, 3), |x2 - x3| = (0, 2): mean 6 / 4 = 1.5
    # |z0 - z1| = (1, 1), |z2 - z3| = (2, 0): mean 4 / 4 = 1.0
    assert float(losses.mode_seeking_ratio(IMAGES, Z)) == pytest.approx(1.5)
    term, ratio = losses.mode_seeking_loss(IMAGES, Z, weight=2.0)
    assert float(ratio) == pytest.approx(1.5)
    assert float(term) == pytest.approx(2.0 / (1.5 + 1e-5))
    assert losses.MODE_SEEKING_EPS == 1e-5                # the authors' eps


def test_an_odd_last_row_is_unpaired_and_a_single_image_adds_nothing():
    extra = np.concatenate([IMAGES, np.full((1, 1, 1, 2), 9.0, np.float32)])
    assert float(losses.mode_seeking_ratio(extra, np.concatenate([Z, [[5.0, 5.0]]]))) \
        == pytest.approx(1.5)
    one = tf.Variable(IMAGES[:1])
    with tf.GradientTape() as tape:
        term, ratio = losses.mode_seeking_loss(one, Z[:1], weight=1.0)
    assert float(term) == 0.0 and float(ratio) == 0.0
    grad = tape.gradient(term, one)
    assert grad is None or np.all(np.isfinite(grad.numpy()))


def test_the_term_pushes_paired_images_apart():
    """d/dx0 of w / (L_ms + eps) = -w / (L_ms + eps)^2 * sign(x0 - x1) / (N mean|z gap|):
    the sign of x1 - x0, so a descent step moves each image away from its partner."""
    images = tf.Variable(IMAGES)
    with tf.GradientTape() as tape:
        term, _ = losses.mode_seeking_loss(images, Z, weight=1.0)
    grad = tape.gradient(term, images).numpy().reshape(4, 2)
    x = IMAGES.reshape(4, 2)
    partner_minus_self = np.sign(x[[1, 0, 3, 2]] - x)
    differ = partner_minus_self != 0
    np.testing.assert_array_equal(np.sign(grad)[differ], partner_minus_self[differ])
    # the size: 1 / 1.5^2 / (4 elements x mean latent gap 1.0) per element
    assert np.abs(grad[differ]) == pytest.approx(1 / (1.5 + 1e-5) ** 2 / 4, rel=1e-5)


def test_pairs_share_the_label_of_their_first_row():
    labels = tf.constant([3, 1, 2, 0, 1], tf.int32)
    np.testing.assert_array_equal(steps._pair_labels(labels).numpy(), [3, 3, 2, 2, 1])
    assert steps._pair_labels(None) is None


# ---- the step --------------------------------------------------------------------------

def dcgan_steps(mode_seeking, bare=False, n=1):
    """(metrics of n steps, components) of a tiny unconditional DCGAN at 16 px, batch 4,
    with --mode-seeking through the run's settings; bare: the factory called without the
    keyword, i.e. the step as it was before the option existed."""
    cfg = new_run_settings(dict(model="dcgan", data="unused", resolution=16,
                                channel_scale=0.125, batch_size=4, mode_seeking=mode_seeking))
    parts = build_components(cfg, compile_step=False)
    if bare:
        parts.train_step = steps.make_dcgan_step(
            parts.generator, parts.discriminator, parts.g_optimizer, parts.d_optimizer,
            parts.rng, draw_inputs=parts.draw_inputs)
    else:
        parts.train_step = make_train_step(parts)
    real = tf.random.stateless_uniform((4, 16, 16, 3), seed=(3, 4), minval=-1.0, maxval=1.0)
    metrics = [{k: v.numpy() for k, v in parts.train_step(real).items()} for _ in range(n)]
    return metrics, parts


@pytest.fixture(scope="module")
def dcgan_runs():
    return {"bare": dcgan_steps(0.0, bare=True), 0.0: dcgan_steps(0.0), 1.0: dcgan_steps(1.0)}


def weights(model):
    return [v.numpy() for v in model.variables]


def test_lambda_0_is_bit_identical_to_the_step_without_the_option(dcgan_runs):
    (bare, a), (off, b) = dcgan_runs["bare"], dcgan_runs[0.0]
    assert b.cfg["mode_seeking"] == 0.0
    for m_bare, m_off in zip(bare, off):
        assert m_bare.keys() == m_off.keys()
        for key in m_bare:
            np.testing.assert_array_equal(m_bare[key], m_off[key], err_msg=key)
    for v, w in zip(weights(a.generator) + weights(a.discriminator),
                    weights(b.generator) + weights(b.discriminator)):
        np.testing.assert_array_equal(v, w)


def test_lambda_1_changes_gs_update_and_not_ds(dcgan_runs):
    """First iteration from the same weights, batch and draws: D's update comes before G's
    and does not see the term (unconditional: no labels to pair), so D ends the same; G's
    update differs. The logged g_loss is the adversarial part, the same in both."""
    (off, a), (on, b) = dcgan_runs["bare"], dcgan_runs[1.0]
    for v, w in zip(weights(a.discriminator), weights(b.discriminator)):
        np.testing.assert_array_equal(v, w)
    assert any(not np.array_equal(v, w) for v, w in zip(a.generator.trainable_variables,
                                                        b.generator.trainable_variables))
    assert on[0]["g_loss"] == pytest.approx(off[0]["g_loss"], rel=1e-6)
    assert b.train_step.experimental_get_tracing_count() == 1


@pytest.mark.slow                 # two SL-StyleGAN traces
def test_sl_stylegan_takes_it_too():
    def one_step(mode_seeking):
        cfg = new_run_settings(dict(model="sl-stylegan", data="unused", resolution=8,
                                    channel_scale=0.125, batch_size=4,
                                    mode_seeking=mode_seeking))
        parts = build_components(cfg)
        parts.train_step(tf.random.stateless_uniform((4, 8, 8, 3), seed=(3, 4)))
        return parts
    a, b = one_step(0.0), one_step(1.0)
    for v, w in zip(weights(a.discriminator), weights(b.discriminator)):
        np.testing.assert_array_equal(v, w)
    assert any(not np.array_equal(v, w) for v, w in zip(a.generator.trainable_variables,
                                                        b.generator.trainable_variables))


# ---- the setting -----------------------------------------------------------------------

def settings(tmp_path, *flags):
    args = train.build_parser().parse_args(
        ["--data", str(tmp_path), "--model", "dcgan", "--models-dir", str(tmp_path / "m"),
         "--run", "ms", *flags])
    return train.check_args(args)


def test_the_option_is_saved_kept_on_resume_and_a_change_refused(tmp_path):
    run, cfg, _ = settings(tmp_path, "--mode-seeking", "1")
    assert cfg["mode_seeking"] == 1.0
    assert settings(tmp_path)[1]["mode_seeking"] == 0.0     # the default: off
    # the run exists (config.json as a run writes it): resuming keeps lambda, a change is refused
    RunFolder(str(tmp_path / "m"), str(tmp_path / "r"), run).write_config(cfg, {}, (-1, 1))
    assert settings(tmp_path)[1]["mode_seeking"] == 1.0
    with pytest.raises(UserError, match=r"--mode-seeking was 1\.0, now 2\.0"):
        settings(tmp_path, "--mode-seeking", "2")
    # from the command line: one line, exit 2, before TensorFlow is imported
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "train.py"), "--data", str(tmp_path), "--model",
         "dcgan", "--models-dir", str(tmp_path / "m"), "--run", "ms", "--mode-seeking", "2"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("error: ") and "--mode-seeking was 1.0, now 2.0" in done.stderr


def test_a_run_from_before_the_option_reads_as_off(tmp_path):
    run, cfg, _ = settings(tmp_path)
    del cfg["mode_seeking"]
    RunFolder(str(tmp_path / "m"), str(tmp_path / "r"), run).write_config(cfg, {}, (-1, 1))
    assert settings(tmp_path)[1]["mode_seeking"] == 0.0
    with pytest.raises(UserError, match=r"--mode-seeking was 0\.0, now 1\.0"):
        settings(tmp_path, "--mode-seeking", "1")


def test_stylegan2_and_a_negative_lambda_are_refused(tmp_path):
    with pytest.raises(UserError, match="--mode-seeking applies to sl-stylegan and dcgan"):
        args = train.build_parser().parse_args(
            ["--data", str(tmp_path), "--model", "stylegan2", "--models-dir",
             str(tmp_path / "m"), "--mode-seeking", "1"])
        train.check_args(args)
    with pytest.raises(SystemExit):
        train.build_parser().parse_args(["--mode-seeking", "-1"])
