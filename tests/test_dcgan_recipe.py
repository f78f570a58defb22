"""DCGAN as its authors' code runs it: batch 257, epochs with the partial last batch kept,
Resize + CenterCrop without flips, Adam epsilon 1e-8, grids and checkpoints every 50;
generating from any kept checkpoint and the authors' min-max export."""
import os
import signal

import numpy as np
import pytest
import tensorflow as tf

import data_loader as dl
import generate
from conftest import quiet, write_blob_images
from skingan import sampling, steps
from skingan.components import make_optimizer
from skingan.config import new_run_settings, resolve_config, total_iterations
from skingan.images import minmax_to_uint8
from skingan.loop import train

tf.config.experimental.enable_op_determinism()


def dcgan_defaults():
    return new_run_settings(dict(model="dcgan", data="unused"))


def test_paper_defaults_per_family():
    d = dcgan_defaults()
    assert (d["batch_size"], d["epochs"], d["steps"]) == (257, 2000, None)
    assert (d["crop"], d["hflip"], d["vflip"], d["rot90"]) == ("center", False, False, False)
    assert (d["lr"], d["beta1"], d["beta2"], d["adam_epsilon"]) == (2e-4, 0.5, 0.999, 1e-8)
    assert (d["sample_every"], d["checkpoint_every"], d["resolution"]) == (50, 50, 64)
    assert make_optimizer(d).epsilon == 1e-8
    s = new_run_settings(dict(model="sl-stylegan", data="unused"))
    assert (s["crop"], s["hflip"], s["steps"], s["epochs"]) == ("resize", True, 20000, None)
    assert make_optimizer(s).epsilon == 1e-7     # Keras' default, as its Keras authors had


@pytest.mark.parametrize("n, iterations, sizes", [
    (115, 2000, [115, 115, 115]),                # DF: one partial batch per epoch
    (327, 4000, [257, 70, 257, 70]),             # AKIEC: 257 then 70, epoch after epoch
])
def test_epoch_based_length_and_batches(n, iterations, sizes):
    cfg = dcgan_defaults()
    assert total_iterations(cfg, n) == iterations
    got = [len(dl.epoch_batch_indices(s, 257, n, seed=0)[0]) for s in range(len(sizes))]
    assert got == sizes
    per_epoch = dl.iterations_per_epoch(n, 257)
    for epoch in range(2):                       # each epoch shows each image once
        seen = np.concatenate([dl.epoch_batch_indices(epoch * per_epoch + b, 257, n, 0)[0]
                               for b in range(per_epoch)])
        assert sorted(seen) == list(range(n))


def test_steps_or_epochs_one_unit_per_run(tmp_path):
    with pytest.raises(Exception, match="--steps or --epochs, not both"):
        resolve_config(dict(model="dcgan", data=str(tmp_path), steps=3, epochs=2), tmp_path)
    _, cfg = resolve_config(dict(model="dcgan", data=str(tmp_path), steps=30), tmp_path)
    assert cfg["epochs"] is None and total_iterations(cfg, 115) == 30


def spy_on_batches(monkeypatch, sizes, stop_after=None):
    """Record the batch size of every iteration; SIGTERM the process after `stop_after`."""
    factory = steps.make_dcgan_step

    def spying_factory(*args, **kwargs):
        step = factory(*args, **kwargs)

        def spy(real):
            sizes.append(int(real.shape[0]))
            out = step(real)
            if stop_after is not None and len(sizes) == stop_after:
                os.kill(os.getpid(), signal.SIGTERM)   # as a cluster's scheduler would
            return out
        return spy
    monkeypatch.setattr(steps, "make_dcgan_step", spying_factory)


def epoch_run(tmp_path, data, handle_signals=False, **overrides):
    # eval_images 8: a run scores its generator at its end (dcgan's eval_every), on 8 fakes
    explicit = dict(data=data, model="dcgan", resolution=16, batch_size=5, epochs=2,
                    channel_scale=0.125, sample_every=2, checkpoint_every=2, log_every=1,
                    eval_images=8)
    explicit.update(overrides)
    models, results = tmp_path / "models", tmp_path / "results"
    run, cfg = resolve_config(explicit, str(models))
    return train(cfg, run, str(models), str(results), log=quiet,
                 handle_signals=handle_signals)


def test_partial_batch_is_trained_on_without_retracing(tmp_path, tiny_images, monkeypatch):
    sizes, traces = [], []
    factory = steps.make_dcgan_step

    def counting_factory(*args, **kwargs):
        step = factory(*args, **kwargs)          # the compiled step, before the spy wraps it
        traces.append(step)
        return step
    monkeypatch.setattr(steps, "make_dcgan_step", counting_factory)
    spy_on_batches(monkeypatch, sizes)
    result = epoch_run(tmp_path, tiny_images, epochs=3)  # 12 images, batch 5: 5, 5, 2 per epoch
    assert result["step"] == 9 and sizes == [5, 5, 2] * 3
    # neither dropped nor padded: the loss log has a row per iteration, all finite
    rows = np.loadtxt(os.path.join(result["results_dir"], "losses.csv"), delimiter=",",
                      skiprows=1)
    assert rows.shape[0] == 9 and np.isfinite(rows).all()
    # one trace for the first (full) batch shape; the partial batch's new shape makes
    # reduce_retracing trace one shape-generic graph, which serves every later call
    assert traces[0].experimental_get_tracing_count() == 2


def checkpoint_values(run_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(
        os.path.join(run_dir, "checkpoints")))
    return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
            if "OBJECT_GRAPH" not in n and not n.startswith("save_counter")}


def test_epoch_run_interrupted_mid_epoch_resumes_bit_identically(tmp_path, tiny_images,
                                                                 monkeypatch):
    straight = epoch_run(tmp_path / "a", tiny_images, checkpoint_every=3)
    sizes = []
    spy_on_batches(monkeypatch, sizes, stop_after=2)   # stopped before epoch 1's 2-image batch
    first = epoch_run(tmp_path / "b", tiny_images, handle_signals=True, checkpoint_every=3)
    assert first["stopped"] == "SIGTERM" and first["step"] == 2 and sizes == [5, 5]
    monkeypatch.undo()
    resumed = epoch_run(tmp_path / "b", tiny_images, checkpoint_every=3)
    assert resumed["step"] == 6
    a, b = checkpoint_values(straight["run_dir"]), checkpoint_values(resumed["run_dir"])
    assert a.keys() == b.keys() and len(a) > 20
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_keep_all_checkpoints_and_generate_from_any(tmp_path, tiny_images):
    result = epoch_run(tmp_path, tiny_images, checkpoint_every=1, keep_checkpoints=0)
    kept = sorted(f for f in os.listdir(os.path.join(result["run_dir"], "checkpoints"))
                  if f.endswith(".index"))
    assert kept == [f"ckpt-{s}.index" for s in range(1, 7)]
    models = str(tmp_path / "models")
    run = os.path.basename(result["run_dir"])
    images = {}
    for step in (2, 6, None):
        bundle = sampling.load_generator(run, models, step=step)
        images[step] = np.concatenate([b for _, b in sampling.generate_images(bundle, 3)])
    np.testing.assert_array_equal(images[6], images[None])   # the last one is the export
    assert not np.array_equal(images[2], images[6])
    with pytest.raises(Exception, match="no checkpoint at step 7; kept: 1, 2, 3, 4, 5, 6"):
        sampling.load_generator(run, models, step=7)


def test_minmax_export_matches_hand_computed_values():
    # one image spanning [-0.5, 0.5]: (x + 0.5) / 1 * 255, rounded half up
    x = np.zeros((1, 2, 2, 3), np.float32)
    x[0, 0, 0] = [-0.5, 0.0, 0.5]
    x[0, 1, 1] = [0.25, -0.25, 0.1]
    expected = np.zeros((1, 2, 2, 3), np.uint8) + 128        # 0 -> 127.5 -> 128
    expected[0, 0, 0] = [0, 128, 255]
    expected[0, 1, 1] = [191, 64, 153]                       # 191.25, 63.75, 153.0
    np.testing.assert_array_equal(minmax_to_uint8(x), expected)
    flat = np.full((1, 2, 2, 3), 0.3, np.float32)            # no range: black, as torchvision
    assert minmax_to_uint8(flat).max() == 0


def test_generate_normalize_minmax_stretches_each_image(tmp_path):
    import dcgan
    g = dcgan.build_generator(16, base_filters=4)
    path = str(tmp_path / "g.keras")
    g.save(path)
    bundle = sampling.load_generator(path)
    linear = np.concatenate([b for _, b in sampling.generate_images(bundle, 4)])
    stretched = np.concatenate([b for _, b in sampling.generate_images(
        bundle, 4, normalize="minmax")])
    for img in stretched:
        assert img.min() == 0 and img.max() == 255
    assert linear.max() < 255 or linear.min() > 0            # an untrained G spans less


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """One short epoch run shared by the tests below: --exclude holds out 4 of 12 images
    (8 train, batch 5: 5 then 3 per epoch, 2 epochs = 4 iterations), a grid every
    iteration, a checkpoint every iteration of which the newest 2 are kept."""
    root = tmp_path_factory.mktemp("short")
    data = write_blob_images(str(root / "images"))
    split = root / "split.csv"
    folds = ["train"] * 8 + ["val", "val", "test", "test"]
    split.write_text("image,class,lesion_id,fold\n" + "".join(
        f"img_{i:03d},x,L{i},{fold}\n" for i, fold in enumerate(folds)))
    result = epoch_run(root, data, epochs=2, exclude=str(split), sample_every=1,
                       checkpoint_every=1, keep_checkpoints=2)
    assert result["step"] == 4
    return root, result


def test_keep_checkpoints_keeps_the_newest(short_run):
    _, result = short_run
    kept = sorted(f for f in os.listdir(os.path.join(result["run_dir"], "checkpoints"))
                  if f.endswith(".index"))
    assert kept == ["ckpt-3.index", "ckpt-4.index"]


def test_sample_grid_is_64_fixed_latent_images(short_run):
    from PIL import Image
    _, result = short_run
    a = np.asarray(Image.open(os.path.join(result["results_dir"], "samples_000001.png")))
    b = np.asarray(Image.open(os.path.join(result["results_dir"], "samples_000003.png")))
    assert a.shape == (8 * 18 + 2, 8 * 18 + 2, 3)          # 8 x 8 tiles of 16 px
    assert not np.array_equal(a, b)                          # same latents, G moved


def test_exclude_trains_on_the_training_fold_only(short_run):
    _, result = short_run
    with open(os.path.join(result["run_dir"], "trained_images.txt")) as f:
        assert f.read().split() == [f"img_{i:03d}" for i in range(8)]


def test_generate_writes_an_isic_ground_truth_csv(tmp_path, short_run, capsys):
    root, result = short_run
    out = tmp_path / "synthetic"
    generate.main(["--run", os.path.basename(result["run_dir"]), "--models-dir",
                   str(root / "models"), "--n", "3", "--out", str(out),
                   "--isic-csv", "df"])
    rows = (out / "groundtruth.csv").read_text().splitlines()
    assert rows == ["image,MEL,NV,BCC,AKIEC,BKL,DF,VASC"] + [
        f"seed{s:04d},0.0,0.0,0.0,0.0,0.0,1.0,0.0" for s in range(3)]
    assert (out / "trained_images.txt").is_file()       # provenance travels with the images
