"""tf.distribute.MirroredStrategy over two logical CPU devices gives what one device gives
for the same global batch: each family's step with ADA (fixed p, and adaptive p fed by the
replicas' summed statistics), a conditional one with EMA, and the whole training loop of a
conditional run. Logical devices must be set before TensorFlow starts, so the comparison
runs in one fresh interpreter (a module fixture) whose report the tests below read.

What is compared where (the training loop has no family-specific code, so one family's run
through it shows the loop; each family's step is compared on its own):
- the step alone, plain SGD, equal weights after every step: DCGAN conditional with
  adaptive ADA and EMA (StyleGAN2's step: test_stylegan2_training.py);
- the loop (tf.data stream of (image, label) pairs distributed over the replicas, Adam,
  logging): SL-StyleGAN conditional with ADA at a fixed p and EMA, the losses of every
  step (SL-StyleGAN's step under both strategies, through the loop).
The unconditional stream's split over replicas is test_data_loader's
test_mirrored_strategy_splits_batches."""
import pytest

from conftest import run_on_two_cpus

SCRIPT = r"""
import keras
from skingan.components import build_components, make_train_step
from skingan.config import new_run_settings, resolve_config
from skingan.loop import train

data, out = sys.argv[1], sys.argv[2]
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
single = tf.distribute.get_strategy()
report = {"replicas": mirrored.num_replicas_in_sync}

# (a) the step alone, with plain SGD so that weights move in proportion to the gradient:
# equal weights mean equal global-batch gradients (loss scaling and all-reduce are right).
def step_weights(strategy, model, options, steps):
    cfg = new_run_settings(dict(model=model, data="unused", resolution=16,
                                channel_scale=0.125, batch_size=4, dropout=0.0, **options))
    conditional = cfg["conditional"]
    if conditional:
        cfg.update(classes=["a", "b", "c"], class_counts=[5, 3, 2])
    parts = build_components(cfg, strategy, compile_step=False)
    with strategy.scope():
        parts.g_optimizer, parts.d_optimizer = keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.01)
        parts.g_optimizer.build(parts.generator.trainable_variables)
        parts.d_optimizer.build(parts.discriminator.trainable_variables)
    step = make_train_step(parts)
    models = [parts.generator, parts.discriminator] + (
        [parts.ema_generator] if parts.ema_generator is not None else [])
    low, high = parts.family.value_range
    real = tf.random.stateless_uniform((4, 16, 16, 3), seed=(1, 2), minval=low, maxval=high)
    batch = (real, tf.constant([0, 2, 1, 2], tf.int32)) if conditional else real
    batches = tf.data.Dataset.from_tensors(batch).repeat(steps)
    if strategy.num_replicas_in_sync > 1:
        batches = strategy.experimental_distribute_dataset(batches)
    metrics = [step(b) for b in batches]
    losses = [float(m["d_loss"]) for m in metrics]
    p = [float(m["ada_p"]) for m in metrics if "ada_p" in m]
    # all variables: weights, BatchNorm's moving statistics for DCGAN, the EMA copy's
    weights = [v.numpy() for m in models for v in m.variables if "float" in str(v.dtype)]
    return losses, p, weights, len(models)

# Adaptive ADA whose p moves by 4 * 4 / 20 = 0.8 after step 4 (target 0: up unless D puts
# most reals on the fake side), with labels (real ones given, fake ones drawn from the class
# balance) and an EMA generator.
CASES = {"dcgan conditional ema ada adaptive": (
             "dcgan", dict(augment="ada", ada_kimg=0.02, ada_target=0.0, conditional=True,
                           class_balance="uniform", ema=0.9), 6)}
for case, (model, options, steps) in CASES.items():
    l1, p1, w1, n1 = step_weights(single, model, options, steps)
    l2, p2, w2, n2 = step_weights(mirrored, model, options, steps)
    report[case] = {"losses": [l1, l2], "p": [p1, p2], "networks": [n1, n2],
                    "max_weight_diff": max(float(np.max(np.abs(a - b)))
                                           for a, b in zip(w1, w2))}

# (b) the whole training loop (labelled data stream, Adam, ADA, EMA, logging) under both.
# ADA's pixel-exact group alone (--augpipe blit): every parameter is still drawn and sliced
# over the replicas as in the full pipeline (which the DCGAN step above runs), and the two
# first calls of SL-StyleGAN's step, R1 through the augmentation, cost far less.
def loop_losses(strategy, name):
    run, cfg = resolve_config(dict(data=data, model="sl-stylegan", resolution=16,
        batch_size=4, steps=3, channel_scale=0.125, log_every=1, sample_every=3,
        checkpoint_every=3, conditional=True, class_balance="uniform", augment="ada",
        ada_p=0.3, augpipe="blit", ema=0.9, eval_images=8, run=name), out + "/models")
    cfg["dropout"] = 0.0
    train(cfg, run, out + "/models", out + "/results", strategy=strategy,
          log=lambda *a: None, handle_signals=False)
    rows = np.loadtxt(out + f"/results/{run}/losses.csv", delimiter=",", skiprows=1)
    return rows[:, 1:3].tolist()

report["loop_losses"] = [loop_losses(single, "one"), loop_losses(mirrored, "two")]
print("REPORT" + json.dumps(report))
"""

CASES = ("dcgan conditional ema ada adaptive",)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from test_conditional_training import write_colour_classes
    tmp = tmp_path_factory.mktemp("mirrored")
    data = write_colour_classes(tmp / "colours", {"red": 12, "blue": 6, "green": 9})
    # two step traces and two runs under two strategies: minutes on a loaded 2-core machine
    return run_on_two_cpus(SCRIPT, data, tmp, timeout=1500)


@pytest.mark.slow
def test_each_familys_step_on_two_logical_devices_matches_one(report):
    assert report["replicas"] == 2
    for case in CASES:
        one, two = report[case]["losses"]
        assert abs(one[1] - one[0]) > 1e-6, case  # the first step changed something
        for a, b in zip(one, two):
            assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), (case, one, two)
        assert report[case]["max_weight_diff"] < 1e-5, case
    # G, D and the EMA copy were compared
    assert report["dcgan conditional ema ada adaptive"]["networks"] == [3, 3]


@pytest.mark.slow
def test_ada_p_is_the_same_on_two_devices_step_by_step(report):
    for case in CASES:
        p_one, p_two = report[case]["p"]
        assert p_one == p_two, (case, p_one, p_two)
    adaptive = report["dcgan conditional ema ada adaptive"]["p"][0]
    assert adaptive[:3] == [0, 0, 0] and adaptive[3] > 0, adaptive   # moved after step 4


@pytest.mark.slow
def test_a_conditional_run_under_mirrored_strategy_logs_the_losses_of_one_device(report):
    """Two logical CPU devices, ADA and EMA on: the losses of each step match one device's
    (labels and fake labels split over the replicas like the images and latents)."""
    one, two = report["loop_losses"]
    assert len(one) == len(two) == 3            # a row per step under both strategies
    for row_one, row_two in zip(one, two):
        for a, b in zip(row_one, row_two):
            assert abs(a - b) <= 1e-4 * max(1.0, abs(a)), (one, two)
