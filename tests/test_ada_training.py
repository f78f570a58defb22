"""ADA wired into training (--augment ada): R1 on the augmented reals, exact resume with p
and its statistics in the checkpoint, --ada-p, the ADA metrics in the log, and the settings
a resumed run must keep. (MirroredStrategy: tests/test_mirrored.py.)"""
import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

import train
from skingan import ada, losses
from skingan.components import Components, build_components
from skingan.config import new_run_settings
from skingan.errors import UserError
from skingan.families import get_family
from test_training import checkpoint_values, run_training

tf.config.experimental.enable_op_determinism()

P_VALUE = "ada_p/.ATTRIBUTES/VARIABLE_VALUE"


def build(model, batch=4, resolution=16, **options):
    """Components with a compiled step, and one real batch (B, R, R, 3) in the family's
    value range."""
    cfg = new_run_settings(dict(model=model, data="unused", resolution=resolution,
                                channel_scale=0.125, batch_size=batch, **options))
    parts = build_components(cfg)
    low, high = parts.family.value_range
    real = tf.random.stateless_uniform((batch, resolution, resolution, 3), seed=(3, 4),
                                       minval=low, maxval=high)
    return parts, real


@pytest.mark.slow
def test_r1_is_taken_on_the_augmented_reals(monkeypatch):
    seen = tf.Variable(tf.zeros([4, 16, 16, 3]))   # the images R1 differentiates D at
    original = losses.discriminator_with_r1

    def spy(critic, images, weight=losses.R1_WEIGHT):
        seen.assign(tf.cast(images, tf.float32))
        return original(critic, images, weight)
    monkeypatch.setattr(losses, "discriminator_with_r1", spy)

    # One step at p = 0, then (p is a variable the compiled step reads: no second trace)
    # one at p = 0.9.
    parts, real = build("sl-stylegan", augment="ada", ada_p=0.0)
    parts.train_step(real)
    # ADA at p = 0 is the identity and draws after the latents: the unaugmented first step
    np.testing.assert_array_equal(seen.numpy(), real)
    parts.augment.p.assign(0.9)
    # the same draws as the step makes, from a copy of its generator
    rng = tf.random.Generator.from_state(parts.rng.state.numpy(), parts.rng.algorithm)
    parts.draw_inputs(rng.normal, 4)                               # z and noise of the D update
    parts.draw_inputs(rng.normal, 4)                               # ... and of the G update
    params = ada.draw_params(rng, 4, 0.9, 16)                      # the reals' ADA parameters
    expected = ada.apply(real, params, parts.family.value_range).numpy()
    parts.train_step(real)
    # at p = 0.9 R1 is taken on exactly the augmented reals
    assert not np.allclose(seen.numpy(), real)
    np.testing.assert_allclose(seen.numpy(), expected, atol=1e-6)
    assert parts.train_step.experimental_get_tracing_count() == 1


@pytest.mark.slow
def test_ada_resume_is_bit_identical_and_continues_with_the_same_p(tmp_path, tiny_images):
    # ada_kimg 0.02: p moves by 4 * 4 / 20 = 0.8 at each adjustment (after steps 4 and 8),
    # target 0: up while more reals are on the real side than not. The checkpoint at step 5
    # holds p = 0.8 and one iteration's worth of accumulated signs.
    # eval_every 0: a stop scores the generator at its end, so an interrupted run has one
    # score more than a straight one (and may keep another best step); ADA's state is the point
    options = dict(model="dcgan", augment="ada", ada_kimg=0.02, ada_target=0.0,
                   checkpoint_every=5, eval_every=0)
    straight = run_training(tmp_path / "a", tiny_images, steps=10, **options)
    first = run_training(tmp_path / "b", tiny_images, steps=5, **options)
    half = checkpoint_values(first)
    assert half[P_VALUE] > 0 and half["ada_sign_count/.ATTRIBUTES/VARIABLE_VALUE"] == 4
    resumed = run_training(tmp_path / "b", tiny_images, steps=10, **options)
    a, b = checkpoint_values(straight), checkpoint_values(resumed)
    assert a.keys() == b.keys() and {P_VALUE, "ada_rt/.ATTRIBUTES/VARIABLE_VALUE"} <= set(a)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)

    def log(result):
        with open(os.path.join(result["results_dir"], "losses.csv")) as f:
            return f.read().splitlines()
    rows = log(resumed)
    assert rows[0].split(",")[-2:] == ["ada_p", "ada_rt"]
    assert rows == log(straight)        # p, r_t and every loss, step by step
    p = [float(r.split(",")[-2]) for r in rows[1:]]
    assert p[3] > 0 and p[:3] == [0, 0, 0]


@pytest.mark.slow
def test_ada_p_fixes_p_and_a_resume_must_keep_the_ada_settings(tmp_path, tiny_images):
    flags = ["--data", str(tiny_images), "--run", "fixed", "--model", "dcgan",
             "--resolution", "16", "--batch-size", "4", "--channel-scale", "0.125",
             "--log-every", "1", "--sample-every", "8", "--checkpoint-every", "8",
             "--models-dir", str(tmp_path / "models"), "--results-dir", str(tmp_path / "res")]
    ada_flags = ["--augment", "ada", "--ada-p", "0.25", "--ada-kimg", "0.02"]
    result = train.main(flags + ada_flags + ["--steps", "8"])
    rows = np.genfromtxt(os.path.join(result["results_dir"], "losses.csv"), delimiter=",",
                         names=True)
    np.testing.assert_array_equal(rows["ada_p"], 0.25)    # two adjustments, no move
    assert rows["ada_rt"][3] != 0 or rows["ada_rt"][7] != 0    # r_t is still measured
    assert checkpoint_values(result)[P_VALUE] == np.float32(0.25)
    assert os.path.isfile(os.path.join(result["results_dir"], "losses.png"))

    longer = flags + ["--steps", "10"]
    with pytest.raises(UserError, match=r"--ada-target was 0.6, now 0.7"):
        train.main(longer + ["--ada-target", "0.7"])
    with pytest.raises(UserError, match=r"--ada-p was 0.25, now 0.3"):
        train.main(longer + ["--ada-p", "0.3"])
    with pytest.raises(UserError, match="--ada-p needs --augment ada"):
        train.main(flags + ["--run", "other", "--steps", "2", "--ada-p", "0.1"])
    with pytest.raises(UserError, match="or 'ada' alone"):
        train.main(flags + ["--run", "other", "--steps", "2", "--augment", "ada,color"])


def test_ada_metrics_are_logged_only_when_ada_is_on():
    off = Components(family=get_family("sl-stylegan"), cfg={}, strategy=None, generator=None,
                     discriminator=None, ema_generator=None, g_optimizer=None,
                     d_optimizer=None, rng=None, step=None)
    on = dataclasses.replace(off, augment=ada.AdaController(target=0.6, ada_kimg=500))
    assert off.metric_names == get_family("sl-stylegan").metric_names
    assert on.metric_names == off.metric_names + ("ada_p", "ada_rt")
