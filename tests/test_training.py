"""The train steps and the training loop: which variables each update touches, that a
step learns, exact resume, refusals, and the NaN guard."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import train
from skingan import steps
from skingan.components import build_components, make_train_step
from skingan.config import new_run_settings, resolve_config
from skingan.errors import UserError
from skingan.loop import NonFiniteLossError, train as train_run
from conftest import quiet, write_blob_images

tf.config.experimental.enable_op_determinism()




def make_config(models_dir, data, **overrides):
    # eval_images 8: every run scores its generator at its end (the families' eval_every),
    # on 8 fakes here rather than the default 500
    explicit = dict(data=data, model="dcgan", resolution=16, batch_size=4, steps=4,
                    channel_scale=0.125, sample_every=2, checkpoint_every=2, log_every=1,
                    eval_images=8)
    explicit.update(overrides)
    return resolve_config(explicit, str(models_dir))


def run_training(tmp_path, data, **overrides):
    models, results = tmp_path / "models", tmp_path / "results"
    run, cfg = make_config(models, data, **overrides)
    return train_run(cfg, run, str(models), str(results), log=quiet, handle_signals=False)


def build_for_step(model, resolution=16, batch=4, g_lr=1e-3, d_lr=1e-3):
    import keras
    cfg = new_run_settings(dict(model=model, data="unused", resolution=resolution,
                                channel_scale=0.125, batch_size=batch))
    parts = build_components(cfg, compile_step=False)
    parts.g_optimizer = keras.optimizers.Adam(g_lr, beta_1=cfg["beta1"], beta_2=cfg["beta2"])
    parts.d_optimizer = keras.optimizers.Adam(d_lr, beta_1=cfg["beta1"], beta_2=cfg["beta2"])
    # built before the first call, as build_components builds its own: a step that creates
    # the optimizers' variables is traced twice
    parts.g_optimizer.build(parts.generator.trainable_variables)
    parts.d_optimizer.build(parts.discriminator.trainable_variables)
    step = make_train_step(parts)
    low, high = parts.family.value_range
    real = tf.random.uniform((batch, resolution, resolution, 3), low, high, seed=1)
    return parts, step, real


def snapshot(model):
    return [v.numpy().copy() for v in model.trainable_variables]


def changed(before, model):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables)]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["sl-stylegan", "dcgan"])
def test_each_update_moves_only_its_network_and_every_variable_of_it(model):
    """One step with G's learning rate at 0, then one with D's (the rates are variables the
    compiled step reads, so one trace serves both): the update that can move anything
    moves every variable of its network (each gets a gradient) and leaves the other alone;
    the losses are finite and positive."""
    parts, step, real = build_for_step(model, g_lr=0.0, d_lr=1e-3)
    g, d = parts.generator, parts.discriminator
    for g_lr, d_lr in ((0.0, 1e-3), (1e-3, 0.0)):
        parts.g_optimizer.learning_rate, parts.d_optimizer.learning_rate = g_lr, d_lr
        g0, d0 = snapshot(g), snapshot(d)
        metrics = step(real)
        for name, value in metrics.items():
            assert np.isfinite(value.numpy()), name
        assert metrics["d_loss"].numpy() > 0 and metrics["g_loss"].numpy() > 0
        moved, still = (d0, d), (g0, g)
        if g_lr:
            moved, still = still, moved
        assert all(changed(*moved)), f"every variable should get a gradient (G lr {g_lr})"
        assert not any(changed(*still)), f"the other network must stay put (G lr {g_lr})"
    assert step.experimental_get_tracing_count() == 1


def final_weights(result):
    import keras
    import SL_StyleGAN  # noqa: F401  (registers custom layers)
    model = keras.models.load_model(os.path.join(result["run_dir"], "generator.keras"))
    return [w.copy() for w in model.get_weights()]


def checkpoint_values(result):
    """Every variable of the latest checkpoint (models, optimizers, RNG, step), by name."""
    path = tf.train.latest_checkpoint(os.path.join(result["run_dir"], "checkpoints"))
    reader = tf.train.load_checkpoint(path)
    names = [n for n in reader.get_variable_to_shape_map() if "OBJECT_GRAPH" not in n]
    return {n: reader.get_tensor(n) for n in names}


# SL-StyleGAN's step is the costliest to trace, and each training run traces it anew: its
# three runs (4 iterations straight; 2, then resumed to 4) serve every SL-StyleGAN test below.
# They train with an EMA generator, translation DiffAugment and lazy R1 every 2 iterations,
# so the resume also carries the EMA weights and the R1 schedule across the interruption.
SL_OPTIONS = dict(model="sl-stylegan", checkpoint_every=2, ema=0.5, augment="translation",
                  r1_every=2)


@pytest.fixture(scope="module")
def sl_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sl")
    data = write_blob_images(str(root / "images"))
    straight = run_training(root / "a", data, steps=4, **SL_OPTIONS)
    first = run_training(root / "b", data, steps=2, **SL_OPTIONS)
    resumed = run_training(root / "b", data, steps=4, **SL_OPTIONS)
    return dict(data=data, straight=straight, first=first, resumed=resumed)


def assert_resumed_run_is_bit_identical(straight, resumed, steps):
    a, b = checkpoint_values(straight), checkpoint_values(resumed)
    assert a.keys() == b.keys() and len(a) > 20
    for name in a:
        if name.startswith(("best_step", "best_score")):
            continue  # every stop scores the generator at its end: one score more when resumed
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    # the loss log describes the whole run once, step by step
    rows = np.loadtxt(os.path.join(resumed["results_dir"], "losses.csv"), delimiter=",",
                      skiprows=1)
    np.testing.assert_array_equal(rows[:, 0], np.arange(1, steps + 1))


@pytest.mark.slow                    # the sl_runs fixture: three SL-StyleGAN runs, ~60 s
def test_sl_stylegan_resume_is_bit_identical_to_an_uninterrupted_run(sl_runs):
    assert sl_runs["first"]["step"] == 2 and sl_runs["resumed"]["step"] == 4
    assert_resumed_run_is_bit_identical(sl_runs["straight"], sl_runs["resumed"], 4)


@pytest.mark.parametrize("options", [
    {}, pytest.param({"augment": "color,translation,cutout", "ema": 0.9},
                     marks=pytest.mark.slow)])
def test_dcgan_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, tiny_images,
                                                               options):
    straight = run_training(tmp_path / "a", tiny_images, steps=6, checkpoint_every=3,
                            **options)
    first = run_training(tmp_path / "b", tiny_images, steps=3, checkpoint_every=3, **options)
    assert first["step"] == 3
    resumed = run_training(tmp_path / "b", tiny_images, steps=6, checkpoint_every=3,
                           **options)
    assert resumed["step"] == 6
    assert_resumed_run_is_bit_identical(straight, resumed, 6)


def test_rerun_past_the_target_does_nothing(tmp_path, tiny_images):
    run_training(tmp_path, tiny_images, steps=2)
    again = run_training(tmp_path, tiny_images, steps=2)
    assert again["step"] == 2 and again["stopped"] == "done"


def test_resume_with_other_model_or_resolution_is_refused(tmp_path, tiny_images):
    result = run_training(tmp_path, tiny_images, steps=2, run="myrun")
    before = checkpoint_values(result)
    # through train.py's command line, as a user would rerun it
    rerun = ["--data", str(tiny_images), "--run", "myrun", "--steps", "4",
             "--models-dir", str(tmp_path / "models"), "--results-dir", str(tmp_path / "results")]
    with pytest.raises(UserError, match=r"--model was 'dcgan', now 'sl-stylegan'"):
        train.main(rerun + ["--model", "sl-stylegan"])
    with pytest.raises(UserError, match=r"--resolution was 16, now 32.*--run NEW_NAME"):
        train.main(rerun + ["--model", "dcgan", "--resolution", "32"])
    after = checkpoint_values(result)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_resume_on_changed_data_is_refused(tmp_path, tiny_images):
    run_training(tmp_path, tiny_images, steps=2, run="myrun")
    os.remove(os.path.join(tiny_images, "img_000.png"))
    with pytest.raises(UserError, match="data changed.*12 images then, 11 now"):
        run_training(tmp_path, tiny_images, steps=4, run="myrun")


def test_new_run_never_overwrites_foreign_folder(tmp_path, tiny_images):
    stray = tmp_path / "results" / "myrun"
    stray.mkdir(parents=True)
    (stray / "keep.txt").write_text("precious")
    with pytest.raises(UserError, match="already holds files"):
        run_training(tmp_path, tiny_images, steps=2, run="myrun")
    assert (stray / "keep.txt").read_text() == "precious"


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_images, monkeypatch):
    real_factory = steps.make_dcgan_step

    def poisoned_factory(*args, **kwargs):
        step_fn = real_factory(*args, **kwargs)
        calls = {"n": 0}

        def step(real):
            calls["n"] += 1
            metrics = step_fn(real)
            if calls["n"] >= 4:  # the 4th iteration diverges
                metrics = dict(metrics, d_loss=tf.constant(float("nan")))
            return metrics
        return step

    monkeypatch.setattr(steps, "make_dcgan_step", poisoned_factory)
    with pytest.raises(NonFiniteLossError, match="d_loss became nan at step 4"):
        run_training(tmp_path, tiny_images, steps=8, checkpoint_every=2, run="nanrun")
    ckpt = tf.train.latest_checkpoint(str(tmp_path / "models" / "nanrun" / "checkpoints"))
    assert ckpt.endswith("ckpt-2")
    monkeypatch.undo()
    # the run resumes from that checkpoint
    result = run_training(tmp_path, tiny_images, steps=4, checkpoint_every=2, run="nanrun")
    assert result["step"] == 4


@pytest.mark.slow                    # the sl_runs fixture: three SL-StyleGAN runs, ~60 s
def test_run_folder_holds_what_resume_and_generate_need(sl_runs):
    result = sl_runs["straight"]
    with open(os.path.join(result["run_dir"], "config.json")) as f:
        config = json.load(f)
    assert config["settings"]["model"] == "sl-stylegan"
    assert config["data"]["num_images"] == 12
    assert config["versions"]["tensorflow"] == tf.__version__
    assert os.path.isfile(os.path.join(result["run_dir"], "generator.keras"))
    names = checkpoint_values(result)
    for part in ("generator", "discriminator", "g_optimizer", "d_optimizer", "rng", "step"):
        assert any(n.startswith(part + "/") for n in names), part
    # the ids of the images trained on, for classify.py's leak check
    with open(os.path.join(result["run_dir"], "trained_images.txt")) as f:
        assert f.read().split() == [f"img_{i:03d}" for i in range(12)]
    produced = os.listdir(result["results_dir"])
    assert {"losses.csv", "losses.png", "samples_000002.png", "tensorboard"} <= set(produced)


def test_finished_run_reports_its_disk_usage(tmp_path, tiny_images):
    from skingan.runs import folder_bytes, format_bytes
    models, results = tmp_path / "models", tmp_path / "results"
    run, cfg = make_config(models, tiny_images, steps=2)
    messages = []
    result = train_run(cfg, run, str(models), str(results), log=messages.append,
                       handle_signals=False)
    size = format_bytes(folder_bytes(result["run_dir"]))
    assert size.endswith(" kB") or size.endswith(" MB")
    assert f"disk: {size} in {result['run_dir']} (checkpoints, exports)" in messages[-1]
    assert format_bytes(999) == "999 bytes" and format_bytes(214_000_000) == "214.0 MB"


@pytest.mark.slow
@pytest.mark.parametrize("model", ["sl-stylegan", "dcgan"])
@pytest.mark.parametrize("option", ["xla", "mixed_precision"])
def test_xla_and_bf16_runs_train_with_finite_losses(tmp_path, tiny_images, option, model):
    import keras
    # SL-StyleGAN under XLA with ADA at a fixed p: ADA's pixel gather inside R1's double
    # backward is what XLA once could not compile (the same code serves StyleGAN2's lazy R1)
    ada = dict(augment="ada", ada_p=0.5) if (model, option) == ("sl-stylegan", "xla") else {}
    result = run_training(tmp_path, tiny_images, model=model, steps=3, **{option: True}, **ada)
    rows = np.loadtxt(os.path.join(result["results_dir"], "losses.csv"), delimiter=",",
                      skiprows=1)
    assert rows.shape[0] == 3 and np.all(np.isfinite(rows))
    assert keras.mixed_precision.global_policy().name == "float32"  # left as found
    if option == "mixed_precision":
        g = keras.models.load_model(os.path.join(result["run_dir"], "generator.keras"))
        inner = g.get_layer("synthesis").get_layer("g4_conv") if model == "sl-stylegan" \
            else g.get_layer("g8_convt")
        assert inner.compute_dtype == "bfloat16"
        assert g.outputs[0].dtype == "float32"


def test_quality_scores_during_training_keep_the_best_generator(tmp_path, tiny_images,
                                                                monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no_keras_cache"))
    messages = []
    models, results = tmp_path / "models", tmp_path / "results"
    run, cfg = make_config(models, tiny_images, steps=4, eval_every=2, eval_images=8,
                           eval_fid=True)
    train_run(cfg, run, str(models), str(results), log=messages.append,
                handle_signals=False)
    assert any("FID during training is off" in m for m in messages)
    rows = np.genfromtxt(results / run / "metrics.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(rows["step"], [2, 4])
    assert np.all(np.isfinite(rows["swd"]) & (rows["swd"] > 0))
    assert (models / run / "generator_best.keras").is_file()
    best = tf.train.load_checkpoint(str(models / run / "checkpoints")).get_tensor(
        "best_score/.ATTRIBUTES/VARIABLE_VALUE")
    assert best == pytest.approx(rows["swd"].min())


def test_resumed_run_keeps_its_earlier_quality_scores(tmp_path, tiny_images):
    models, results = tmp_path / "models", tmp_path / "results"
    for length in (4, 6):
        run, cfg = make_config(models, tiny_images, steps=length, eval_every=2, eval_images=8)
        train_run(cfg, run, str(models), str(results), log=quiet, handle_signals=False)
    rows = np.genfromtxt(results / run / "metrics.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(rows["step"], [2, 4, 6])


@pytest.mark.slow                    # the sl_runs fixture: three SL-StyleGAN runs, ~60 s
def test_ema_generator_is_the_average_that_gets_exported(sl_runs):
    import keras
    result = sl_runs["straight"]           # ema 0.5, translation DiffAugment
    names = checkpoint_values(result)
    assert any(n.startswith("ema_generator/") for n in names)
    exported = keras.models.load_model(os.path.join(result["run_dir"], "generator.keras"))
    def listed(prefix):  # the checkpoint's list entries prefix/<index>/..., in order
        keys = [n for n in names if n.startswith(prefix + "/")]
        return [names[n] for n in sorted(keys, key=lambda n: int(n.split("/")[1]))]
    ema, raw = listed("ema_generator"), listed("generator")
    floats = [(e, r) for e, r in zip(ema, raw) if e.dtype.kind == "f"]
    assert any(not np.array_equal(e, r) for e, r in floats)  # the average lags behind
    exported_weights = exported.get_weights()
    assert len(exported_weights) == len(ema)
    for got, want in zip(exported_weights, ema):
        np.testing.assert_array_equal(got, want)


# ---- lazy R1 (--r1-every) ----------------------------------------------------------------

def sl_stylegan_steps(r1_every, n=4):
    """Metrics of n SL-StyleGAN steps (tiny networks, fixed seeds and batch) built with
    r1_every through the run's settings."""
    cfg = new_run_settings(dict(model="sl-stylegan", data="unused", resolution=16,
                                channel_scale=0.125, batch_size=4, r1_every=r1_every))
    parts = build_components(cfg)
    real = tf.random.stateless_uniform((4, 16, 16, 3), seed=(3, 4))
    metrics = [{k: v.numpy() for k, v in parts.train_step(real).items()} for _ in range(n)]
    return metrics, parts


@pytest.fixture(scope="module")
def lazy_r1_steps():
    """sl_stylegan_steps for --r1-every 1 (the paper's step) and 2, built once, and how
    often --r1-every 2's step was traced in its four iterations."""
    runs = {k: sl_stylegan_steps(k) for k in (1, 2)}
    runs["traces"] = runs[2][1].train_step.experimental_get_tracing_count()
    return runs


@pytest.mark.slow
def test_r1_every_1_is_the_papers_step_with_no_schedule_in_its_graph(lazy_r1_steps):
    (every1, b), (_, every2) = lazy_r1_steps[1], lazy_r1_steps[2]
    assert b.cfg["r1_every"] == 1
    assert all(m["r1"] > 0 for m in every1)                # R1 on every iteration
    # K = 1 has no schedule in its graph: no conditional at all (K = 2 has the tf.cond)
    real = tf.TensorSpec((4, 16, 16, 3), tf.float32)
    def conditionals(parts):
        graph = parts.train_step.get_concrete_function(real).graph
        return [op.type for op in graph.get_operations() if op.type in ("If", "StatelessIf")]
    assert conditionals(b) == []
    assert conditionals(every2) != []


@pytest.mark.slow
def test_r1_every_2_applies_r1_on_even_iterations_with_twice_the_weight(lazy_r1_steps):
    (every1, _), (every2, _) = lazy_r1_steps[1], lazy_r1_steps[2]
    r1 = [m["r1"] for m in every2]
    assert r1[0] > 0 and r1[2] > 0 and r1[1] == 0 and r1[3] == 0
    # iteration 0 starts from the same weights, batch and draws: the penalty is 2 x 5 x the
    # same squared gradient norm (doubling is exact in floating point)
    assert r1[0] == 2 * every1[0]["r1"]
    # and the least-squares part of D's loss is the same
    assert every2[0]["d_loss"] - r1[0] == pytest.approx(every1[0]["d_loss"] - every1[0]["r1"],
                                                        rel=1e-6)
    assert all(np.isfinite(m["d_loss"]) for m in every2)
    # one graph for both kinds of iteration (a tf.cond on D's update count), no retracing
    assert lazy_r1_steps["traces"] == 1


@pytest.mark.slow                    # the sl_runs fixture: three SL-StyleGAN runs, ~60 s
def test_r1_every_is_fixed_for_a_run_and_refused_for_dcgan(tmp_path, sl_runs):
    data, run_dir = sl_runs["data"], sl_runs["straight"]["run_dir"]     # --r1-every 2
    run = os.path.basename(run_dir)
    models = os.path.dirname(run_dir)
    with pytest.raises(UserError, match=r"--r1-every was 2, now 4"):
        make_config(models, data, model="sl-stylegan", run=run, r1_every=4)
    # a run folder from before the option (a copy of its config.json): its settings lack
    # r1_every and read as 1
    doc = json.loads(open(os.path.join(run_dir, "config.json")).read())
    del doc["settings"]["r1_every"]
    (tmp_path / "models" / run).mkdir(parents=True)
    (tmp_path / "models" / run / "config.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"--r1-every was 1, now 4"):
        make_config(tmp_path / "models", data, model="sl-stylegan", run=run, r1_every=4)
    _, cfg = make_config(tmp_path / "models", data, model="sl-stylegan", run=run)
    assert cfg["r1_every"] == 1
    with pytest.raises(UserError, match="--r1-every applies to sl-stylegan only"):
        train.main(["--model", "dcgan", "--data", str(data), "--r1-every", "2",
                    "--models-dir", str(tmp_path / "m2"), "--results-dir", str(tmp_path / "r2")])
    with pytest.raises(SystemExit):
        train.main(["--r1-every", "0"])
