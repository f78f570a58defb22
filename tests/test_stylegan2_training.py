"""StyleGAN2-ADA's training (skingan/stylegan2_step.py, its configurations and registry
entry): the loss terms against hand-computed values, the lazy phases and Adam's
correction, the EMA half-life, w_avg, and two replicas against one device. The training
runs (exact resume mid-cycle, the downstream scripts, a conditional run) are
test_stylegan2_runs.py's. Networks are tiny (channel_base 256, 16 px, z and w of 32)."""
import math

import numpy as np
import pytest
import tensorflow as tf

import train
from conftest import run_on_two_cpus
from skingan import losses
from skingan.config import new_run_settings, resolve_config
from skingan.errors import UserError
from skingan.stylegan2_configs import config_settings
from skingan.stylegan2_step import ema_beta

tf.config.experimental.enable_op_determinism()

# eval_images 8: every run scores its generator at its end; 8 fakes keep that cheap
TINY = dict(model="stylegan2", resolution=16, channel_base=256, latent_dim=32, w_dim=32,
            batch_size=4, eval_images=8)


# ---- the loss terms -------------------------------------------------------------------

def softplus(x):
    return np.log1p(np.exp(x))


def test_logistic_losses_are_nvlabs_softplus_terms():
    real = tf.constant([[0.0], [2.0]])
    fake = tf.constant([[-1.0], [0.5]])
    d = losses.logistic_discriminator_loss(real, fake).numpy()
    g = losses.logistic_generator_loss(fake).numpy()
    expected_d = np.mean(softplus(np.array([-1.0, 0.5]))) + np.mean(softplus(-np.array([0.0, 2.0])))
    np.testing.assert_allclose(d, expected_d, rtol=1e-6)
    np.testing.assert_allclose(g, (np.log1p(np.e) + np.log1p(np.exp(-0.5))) / 2, rtol=1e-6)


def test_r1_of_a_linear_critic_is_gamma_half_its_squared_weight_norm():
    # D(x) = sum(w * x): grad_x D = w for every image, so R1 = gamma / 2 * sum(w^2),
    # also through a flip before D (the gradient is taken w.r.t. the un-augmented image).
    w = tf.constant(np.random.RandomState(0).standard_normal((1, 4, 4, 3)), tf.float32)
    images = tf.random.normal([3, 4, 4, 3], seed=1)
    gamma = 0.5
    expected = gamma / 2 * float(np.sum(w.numpy() ** 2))
    for critic in (lambda x: tf.reduce_sum(w * x, axis=[1, 2, 3])[:, None],
                   lambda x: tf.reduce_sum(w * tf.reverse(x, [2]), axis=[1, 2, 3])[:, None]):
        logits, r1 = losses.discriminator_with_r1(critic, images,
                                                  losses.stylegan2_r1_weight(gamma))
        assert logits.shape == (3, 1)
        np.testing.assert_allclose(r1.numpy(), expected, rtol=1e-5)


def test_path_length_of_a_linear_synthesis_against_numpy():
    # G(ws) = einsum(ws, A): d sum(G(ws) * y) / d ws = A . y for every image.
    rs = np.random.RandomState(0)
    b, num_ws, w_dim, pixels = 3, 2, 5, 4 * 4 * 3
    a = rs.standard_normal((num_ws, w_dim, pixels)).astype("float32")
    y = (rs.standard_normal((b, pixels)) / 4.0).astype("float32")     # noise / sqrt(H W)
    ws = tf.constant(rs.standard_normal((b, num_ws, w_dim)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(ws)
        images = tf.einsum("bnw,nwp->bp", ws, a)
        out = tf.reduce_sum(images * y)
    lengths = losses.path_lengths(tape.gradient(out, ws)).numpy()
    grads = np.einsum("nwp,bp->bnw", a, y)
    expected = np.sqrt(np.mean(np.sum(grads ** 2, axis=2), axis=1))
    np.testing.assert_allclose(lengths, expected, rtol=1e-5)
    penalty, pl_mean = losses.path_length_penalty(tf.constant(expected), float(expected.mean()),
                                                  1.5, decay=0.01)
    new_mean = 1.5 + 0.01 * (expected.mean() - 1.5)
    np.testing.assert_allclose(float(pl_mean), new_mean, rtol=1e-6)
    np.testing.assert_allclose(penalty.numpy(), (expected - new_mean) ** 2, rtol=1e-5)


def test_ema_beta_is_nvlabs_half_life_with_its_ramp_up():
    # 10 kimg half-life, batch 32: 0.5 ** (32 / 10000)
    assert float(ema_beta(32, 10 ** 6, 10.0)) == pytest.approx(math.exp(-0.0032 * math.log(2)))
    # ramp-up 0.05 after 1,000 images: ema_nimg = min(10000, 50) = 50
    assert float(ema_beta(32, 1000, 10.0, 0.05)) == pytest.approx(0.5 ** (32 / 50))
    assert float(ema_beta(32, 0, 10.0, 0.05)) == 0.0          # the first update copies G
    assert float(ema_beta(32, 10 ** 7, 10.0, 0.05)) == pytest.approx(0.5 ** (32 / 10000))


# ---- configurations -------------------------------------------------------------------

@pytest.mark.parametrize("config, resolution, gpus, expected", [
    ("auto", 256, 1, dict(batch_size=16, mbstd_group=4, channel_base=16384, lr=0.0025,
                          gamma=0.8192, ema_kimg=5.0, ema_rampup=0.05, map_layers=2)),
    ("auto", 64, 2, dict(batch_size=64, mbstd_group=4, channel_base=16384, lr=0.0025,
                         gamma=0.0128, ema_kimg=20.0, map_layers=2)),
    ("auto", 1024, 8, dict(batch_size=32, mbstd_group=4, channel_base=32768, lr=0.002,
                           gamma=6.5536, ema_kimg=10.0)),
    ("paper256", 256, 1, dict(batch_size=64, mbstd_group=8, channel_base=16384, gamma=1.0,
                              ema_kimg=20.0, ema_rampup=None, map_layers=8)),
    ("stylegan2", 256, 1, dict(batch_size=32, channel_base=32768, lr=0.002, gamma=10.0,
                               map_layers=8, style_mixing=0.9, pl_weight=2.0)),
    ("cifar", 32, 1, dict(batch_size=64, mbstd_group=32, gamma=0.01, ema_kimg=500.0,
                          ema_rampup=0.05, pl_weight=0.0, style_mixing=0.0,
                          d_architecture="orig"))])
def test_configurations_have_nvlabs_numbers(config, resolution, gpus, expected):
    got = config_settings(config, resolution, gpus)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value) if isinstance(value, float) else \
            got[key] == value, (key, got[key], value)


def test_a_new_run_takes_its_config_and_flags_override_single_numbers():
    cfg = new_run_settings(dict(model="stylegan2", data="unused", resolution=32))
    assert cfg["config"] == "auto" and cfg["augment"] == "ada" and cfg["ada_target"] == 0.6
    assert cfg["batch_size"] == 32 and cfg["ema_kimg"] == 10.0
    assert cfg["gamma"] == pytest.approx(0.0002 * 32 ** 2 / 32)
    assert cfg["steps"] == 25_000_000 // 32 and cfg["sample_every"] == 200_000 // 32
    assert (cfg["beta1"], cfg["beta2"], cfg["adam_epsilon"], cfg["r1_every"]) == (0, 0.99,
                                                                                  1e-8, 16)
    # --batch-size keeps auto's gamma and EMA (computed from its own batch, as NVlabs')
    cfg = new_run_settings(dict(model="stylegan2", data="unused", resolution=32, batch_size=8,
                                gamma=5.0, map_layers=4))
    assert (cfg["batch_size"], cfg["gamma"], cfg["ema_kimg"], cfg["map_layers"]) == (8, 5.0,
                                                                                     10.0, 4)
    assert cfg["steps"] == 25_000_000 // 8
    cfg = new_run_settings(dict(model="stylegan2", data="unused", config="paper256"))
    assert (cfg["resolution"], cfg["batch_size"], cfg["map_layers"]) == (256, 64, 8)


def test_auto_counts_every_workers_device_as_nvlabs_counts_gpus(monkeypatch):
    """auto's numbers depend on the device count g (NVlabs' --gpus): two workers of one CPU
    each are g = 2, so at 16 px auto's own batch is 64, not 32, and with it gamma halves and
    the EMA doubles, even where --batch-size sets the batch (a one-device run compared with
    a two-worker run must therefore give both the same --gamma)."""
    import json
    workers = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
               "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(workers))
    settings = dict(model="stylegan2", data="unused", resolution=16, batch_size=8)
    one = new_run_settings(dict(settings, devices="one"))
    two = new_run_settings(dict(settings, devices="multiworker"))
    # NVlabs' auto: mb = max(min(g * min(4096 // 16, 32), 64), g), gamma = 0.0002 * 16^2 / mb
    # and ema = mb * 10 / 32 kimg
    assert (one["batch_size"], two["batch_size"]) == (8, 8)
    assert one["gamma"] == pytest.approx(0.0002 * 256 / 32) and one["ema_kimg"] == 10.0
    assert two["gamma"] == pytest.approx(0.0002 * 256 / 64) and two["ema_kimg"] == 20.0


def test_config_is_fixed_on_resume_and_its_flags_belong_to_stylegan2(tmp_path, tiny_images):
    from skingan.runs import RunFolder
    run, cfg = resolve_config(dict(data=tiny_images, **TINY), str(tmp_path))
    RunFolder(str(tmp_path), str(tmp_path / "results"), run).write_config(
        cfg, {"num_images": 12}, (-1.0, 1.0))
    with pytest.raises(UserError, match="--config was 'auto', now 'cifar'"):
        resolve_config(dict(data=tiny_images, config="cifar", **TINY), str(tmp_path))
    with pytest.raises(UserError, match="--gamma was"):
        resolve_config(dict(data=tiny_images, gamma=3.0, **TINY), str(tmp_path))
    for argv, message in ((["--model", "dcgan", "--config", "cifar"], "stylegan2 only"),
                          (["--model", "sl-stylegan", "--map", "2"], "stylegan2 only"),
                          (["--model", "stylegan2", "--ema", "0.99"], "--config")):
        with pytest.raises(UserError, match=message):
            train.main(argv + ["--data", tiny_images, "--models-dir", str(tmp_path / "m")])


# ---- the compiled step: phases, Adam's correction, EMA, w_avg --------------------------

# R1 every 8 iterations instead of NVlabs' 16 (their default is test_a_new_run_takes_its_
# config's): the same schedule and correction, a full D cycle in half the iterations
R1_EVERY = 8


@pytest.fixture(scope="module")
def nine_iterations():
    """One tiny compiled step run for 9 iterations (path length at 0, 4, 8, R1 at 0 and 8),
    without ADA, EMA half-life 10 images and no ramp-up (so beta is fixed at
    0.5 ** (4 / 10)): what each iteration reported and changed."""
    from skingan.components import build_components
    from skingan.stylegan2_step import find_w_avg
    cfg = new_run_settings(dict(data="unused", augment="", ema_kimg=0.01, ema_rampup=None,
                                r1_every=R1_EVERY, **TINY))
    parts = build_components(cfg)
    g, ema = parts.generator, parts.ema_generator
    w_avg = find_w_avg(g.get_layer("mapping"))
    real = tf.random.stateless_uniform((4, 16, 16, 3), seed=(1, 2), minval=-1.0, maxval=1.0)
    record = []
    for _ in range(9):
        ema_before = {v.path: v.numpy() for v in ema.variables}
        metrics = {k: float(v) for k, v in parts.train_step(real).items()}
        record.append(dict(metrics=metrics, ema_before=ema_before,
                           g_after={v.path: (v.numpy(), v.trainable) for v in g.variables},
                           ema_after={v.path: v.numpy() for v in ema.variables},
                           pl_mean=float(parts.step_state.pl_mean.numpy()),
                           w_avg=w_avg.numpy().copy(),
                           g_iterations=int(parts.g_optimizer.iterations.numpy()),
                           d_iterations=int(parts.d_optimizer.iterations.numpy())))
    return parts, record


@pytest.mark.slow
def test_lazy_phases_run_on_their_iterations(nine_iterations):
    parts, record = nine_iterations
    for i, r in enumerate(record):
        m = r["metrics"]
        assert all(np.isfinite(v) for v in m.values()), (i, m)
        assert (m["pl"] > 0) == (i % 4 == 0), (i, m["pl"])
        assert (m["r1"] > 0) == (i % 8 == 0), (i, m["r1"])
        # one Adam step per main phase, one more per regularisation phase
        assert r["g_iterations"] == (i + 1) + (i // 4 + 1)
        assert r["d_iterations"] == (i + 1) + (i // 8 + 1)
        # pl_mean moves only in a path-length phase (decay 0.01 from 0 at first)
        moved = r["pl_mean"] != (record[i - 1]["pl_mean"] if i else 0.0)
        assert moved == (i % 4 == 0), i
    assert int(parts.step_state.batch_idx.numpy()) == 9
    assert int(parts.step_state.cur_nimg.numpy()) == 9 * 4


@pytest.mark.slow
def test_optimizers_carry_the_lazy_regularisation_correction(nine_iterations):
    parts, _ = nine_iterations
    g, d = parts.g_optimizer, parts.d_optimizer
    # G every 4: ratio 4/5; D every 8: ratio 8/9; lr 0.0025, betas (0, 0.99)
    assert float(g.learning_rate.numpy()) == pytest.approx(0.0025 * 4 / 5)
    assert float(d.learning_rate.numpy()) == pytest.approx(0.0025 * 8 / 9)
    assert (g.beta_1, d.beta_1) == (0.0, 0.0)
    assert g.beta_2 == pytest.approx(0.99 ** 0.8) and d.beta_2 == pytest.approx(0.99 ** (8 / 9))
    assert g.epsilon == d.epsilon == 1e-8


@pytest.mark.slow
def test_ema_follows_the_half_life_and_copies_w_avg(nine_iterations):
    _, record = nine_iterations
    beta = 0.5 ** (4 / 10)
    for r in record[:5]:
        for path, (g_value, trainable) in r["g_after"].items():
            before, after = r["ema_before"][path], r["ema_after"][path]
            expected = g_value + beta * (before - g_value) if trainable else g_value
            np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-7, err_msg=path)


@pytest.mark.slow
def test_w_avg_tracks_the_mean_w(nine_iterations):
    _, record = nine_iterations
    w = [r["w_avg"] for r in record]
    assert np.abs(w[0]).max() > 0                       # moved from its zero start
    # 2 or 3 updates of decay 0.995 per iteration: a slow, steady move
    steps = [np.abs(b - a).max() for a, b in zip(w, w[1:])]
    assert all(s > 0 for s in steps) and max(steps) < np.abs(w[-1]).max()


# ---- two replicas against one device ---------------------------------------------------

MIRRORED = r"""
import keras
from skingan.components import build_components, make_train_step
from skingan.config import new_run_settings
from skingan.stylegan2_step import find_w_avg

def run(strategy):
    # plain SGD: weights move in proportion to the gradient, so equal weights mean equal
    # global-batch gradients; R1 every 2 and path length every 4 within 5 iterations
    cfg = new_run_settings(dict(model="stylegan2", data="unused", resolution=16,
                                channel_base=256, latent_dim=32, w_dim=32, batch_size=4,
                                mbstd_group=2, augment="", r1_every=2, gamma=1.0))
    parts = build_components(cfg, strategy, compile_step=False)
    with strategy.scope():
        parts.g_optimizer, parts.d_optimizer = keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.01)
        parts.g_optimizer.build(parts.generator.trainable_variables)
        parts.d_optimizer.build(parts.discriminator.trainable_variables)
    step = make_train_step(parts)
    real = tf.random.stateless_uniform((4, 16, 16, 3), seed=(1, 2), minval=-1.0, maxval=1.0)
    batches = tf.data.Dataset.from_tensors(real).repeat(5)
    if strategy.num_replicas_in_sync > 1:
        batches = strategy.experimental_distribute_dataset(batches)
    metrics = [{k: float(v) for k, v in step(b).items()} for b in batches]
    models = parts.generator.variables + parts.discriminator.variables + parts.ema_generator.variables
    return (metrics, float(parts.step_state.pl_mean.numpy()),
            [v.numpy() for v in models if "float" in str(v.dtype)])

m1, pl1, w1 = run(tf.distribute.get_strategy())
m2, pl2, w2 = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
print("REPORT" + json.dumps({"metrics": [m1, m2], "pl_mean": [pl1, pl2],
      "max_weight_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2))}))
"""


@pytest.mark.slow
def test_two_logical_devices_match_one_device():
    # mbstd_group 2 on a batch of 4: one device groups rows {0, 2} and {1, 3}; each replica
    # must hold one of those groups (rows k, k + 2), not its contiguous half of the batch.
    # Tracing both steps takes minutes on a loaded 2-core machine: a generous timeout.
    report = run_on_two_cpus(MIRRORED, timeout=1500)
    one, two = report["metrics"]
    for i, (a, b) in enumerate(zip(one, two)):
        for key in ("d_loss", "g_loss", "r1", "pl"):
            assert abs(a[key] - b[key]) <= 1e-5 * max(1.0, abs(a[key])), (i, key, a, b)
        assert (a["r1"] > 0) == (i % 2 == 0) and (a["pl"] > 0) == (i % 4 == 0), (i, a)
    assert report["pl_mean"][0] > 0
    assert abs(report["pl_mean"][0] - report["pl_mean"][1]) < 1e-6
    assert report["max_weight_diff"] < 1e-5


def test_ema_copy_pairs_variables_by_path_whatever_the_clone_order():
    # build_mapping keeps w_avg as a model attribute too, which puts it first in the
    # original's variables but not in a clone's: the EMA must pair them by path.
    import keras
    import StyleGAN2
    from skingan.steps import paired_variables
    g = StyleGAN2.build_generator(8, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64)
    clone = keras.models.clone_model(g)
    pairs = paired_variables(g, clone)
    assert len(pairs) == len(g.variables)
    assert all(e.path == v.path and e.shape == v.shape for e, v in pairs)
