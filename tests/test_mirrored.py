"""tf.distribute.MirroredStrategy over two logical CPU devices gives what one device gives
for the same global batch, with and without ADA (fixed p, and adaptive p fed by the
replicas' summed statistics). Logical devices must be set before TensorFlow starts, so the
comparison runs in a fresh interpreter."""
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
    parts = build_components(cfg, strategy, compile_step=False)
    with strategy.scope():
        parts.g_optimizer, parts.d_optimizer = keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.01)
        parts.g_optimizer.build(parts.generator.trainable_variables)
        parts.d_optimizer.build(parts.discriminator.trainable_variables)
    step = make_train_step(parts)
    g, d = parts.generator, parts.discriminator
    low, high = parts.family.value_range
    real = tf.random.stateless_uniform((4, 16, 16, 3), seed=(1, 2), minval=low, maxval=high)
    batches = tf.data.Dataset.from_tensors(real).repeat(steps)
    if strategy.num_replicas_in_sync > 1:
        batches = strategy.experimental_distribute_dataset(batches)
    metrics = [step(b) for b in batches]
    losses = [float(m["d_loss"]) for m in metrics]
    p = [float(m["ada_p"]) for m in metrics if "ada_p" in m]
    # all variables: weights, and BatchNorm's moving statistics for DCGAN
    return losses, p, [v.numpy() for v in g.variables + d.variables if "float" in str(v.dtype)]

# ADA with a fixed p where most transforms fire; adaptive ADA whose p moves by 4 * 4 / 20
# = 0.8 after step 4 (target 0: up unless D puts most reals on the fake side).
CASES = {"sl-stylegan": ("sl-stylegan", {}, 2), "dcgan": ("dcgan", {}, 2),
         "sl-stylegan ada fixed": ("sl-stylegan", dict(augment="ada", ada_p=0.5), 2),
         "dcgan ada adaptive": ("dcgan", dict(augment="ada", ada_kimg=0.02, ada_target=0.0), 6)}
for case, (model, options, steps) in CASES.items():
    l1, p1, w1 = step_weights(single, model, options, steps)
    l2, p2, w2 = step_weights(mirrored, model, options, steps)
    report[case] = {"losses": [l1, l2], "p": [p1, p2], "max_weight_diff": max(
        float(np.max(np.abs(a - b))) for a, b in zip(w1, w2))}

# (b) the whole training loop (data pipeline, Adam, logging) under both strategies.
def loop_losses(strategy, name):
    run, cfg = resolve_config(dict(data=data, model="sl-stylegan", resolution=16,
        batch_size=4, steps=3, channel_scale=0.125, log_every=1, sample_every=3,
        checkpoint_every=3), out + "/models")
    cfg["dropout"] = 0.0
    train(cfg, name, out + "/models", out + "/results", strategy=strategy,
                log=lambda *a: None, handle_signals=False)
    rows = np.loadtxt(out + f"/results/{name}/losses.csv", delimiter=",", skiprows=1)
    return rows[:, 1:3].tolist()

report["loop_losses"] = [loop_losses(single, "one"), loop_losses(mirrored, "two")]
print("REPORT" + json.dumps(report))
"""


@pytest.mark.slow
def test_two_logical_devices_match_one(tmp_path, tiny_images):
    report = run_on_two_cpus(SCRIPT, tiny_images, tmp_path)
    assert report["replicas"] == 2
    for case in ("sl-stylegan", "dcgan", "sl-stylegan ada fixed", "dcgan ada adaptive"):
        one, two = report[case]["losses"]
        assert abs(one[1] - one[0]) > 1e-6, case  # the first step changed something
        for a, b in zip(one, two):
            assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), (case, one, two)
        assert report[case]["max_weight_diff"] < 1e-5, case
        p_one, p_two = report[case]["p"]
        assert p_one == p_two, (case, p_one, p_two)    # the same p, step by step
    assert report["sl-stylegan ada fixed"]["p"][0] == [0.5, 0.5]
    adaptive = report["dcgan ada adaptive"]["p"][0]
    assert adaptive[:3] == [0, 0, 0] and adaptive[3] > 0, adaptive   # moved after step 4
    one, two = report["loop_losses"]
    assert len(one) == len(two) == 3            # a row per step under both strategies
    for row_one, row_two in zip(one, two):
        for a, b in zip(row_one, row_two):
            assert abs(a - b) <= 1e-4 * max(1.0, abs(a)), (one, two)
