"""StyleGAN2-ADA's training runs (skingan/stylegan2_step.py through the loop): exact resume
in the middle of a regularisation cycle (with ADA's scale-free heuristic), the sample grid,
quality scores and the downstream scripts on a trained run, and a conditional bfloat16
DiffAugment run. A file of its own so that the test workers share StyleGAN2's cost; the
step-level tests are test_stylegan2_training.py's. Networks are tiny (its TINY). (--xla with
ADA inside R1's double backward: test_training.py, on SL-StyleGAN's cheaper step.)"""
import os

import numpy as np
import pytest
import tensorflow as tf

import train
from conftest import quiet
from skingan.config import resolve_config
from test_stylegan2_training import R1_EVERY, TINY
from test_training import checkpoint_values

tf.config.experimental.enable_op_determinism()


# ---- a run: exact resume mid-cycle, and the scripts downstream -------------------------

def train_tiny(tmp_path, data, **overrides):
    from skingan.loop import train as train_run
    models, results = tmp_path / "models", tmp_path / "results"
    explicit = dict(data=data, steps=10, sample_every=10, checkpoint_every=6, eval_every=6,
                    log_every=1, ada_kimg=0.1, r1_every=R1_EVERY, **TINY)
    explicit.update(overrides)
    run, cfg = resolve_config(explicit, str(models))
    return train_run(cfg, run, str(models), str(results), log=quiet, handle_signals=False)


# ADA with the scale-free 'rank' heuristic (its accumulators are the default heuristic's,
# and these runs show StyleGAN2's lazy R1 pass adds no (real, fake) pair to them), on its
# pixel-exact 'blit' group alone: the draws are those of the full pipeline (test_ada.py), and
# the step's first call costs far less (docs/bench-tests.md). The full pipeline's exact
# resume: test_ada_training.py.
ADA = dict(ada_heuristic="rank", augpipe="blit")


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """A tiny ADA run straight to 10 iterations, scored at 6 and at its end:
    (data, root, result)."""
    from conftest import write_blob_images
    root = tmp_path_factory.mktemp("sg2run")
    data = write_blob_images(str(root / "images"))
    return data, root, train_tiny(root / "a", data, **ADA)


@pytest.fixture(scope="module")
def resumed_run(straight_run):
    """The straight run, and the same run stopped at 6 (inside both lazy cycles:
    6 % 4 = 2, 6 % 8 = 6) and resumed to 10 (across path length and R1 at 8)."""
    data, root, straight = straight_run
    first = train_tiny(root / "b", data, steps=6, **ADA)
    resumed = train_tiny(root / "b", data, **ADA)
    return data, root, straight, first, resumed


@pytest.mark.slow
def test_resume_in_the_middle_of_a_lazy_cycle_is_bit_identical(resumed_run):
    _, _, straight, first, resumed = resumed_run
    assert first["step"] == 6 and resumed["step"] == straight["step"] == 10
    a, b = checkpoint_values(straight), checkpoint_values(resumed)
    assert a.keys() == b.keys()
    for key in ("sg2_batch_idx", "sg2_cur_nimg", "sg2_pl_mean", "ada_p"):
        assert any(key in name for name in a), key
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    rows = np.genfromtxt(os.path.join(resumed["results_dir"], "losses.csv"), delimiter=",",
                         names=True)
    np.testing.assert_array_equal(rows["step"], np.arange(1, 11))
    assert rows["ada_p"][-1] > 0                         # ADA adapted (target 0.6)
    assert np.count_nonzero(rows["r1"]) == 2 and np.count_nonzero(rows["pl"]) == 3
    # p was last adjusted after iteration 7 (every 4th, from 0): iterations 8 and 9 have
    # added one (real, fake) pair per real each, 2 x 4, and iteration 8's R1 pass none
    count = [v for n, v in a.items() if "ada_sign_count" in n]
    assert count == [8.0]


@pytest.mark.slow
def test_generate_evaluate_and_check_run_work_on_a_stylegan2_run(straight_run, capsys):
    import evaluate
    import generate
    from skingan.images import to_uint8
    from skingan.sampling import generate_images, latent_inputs, load_generator
    from skingan.stylegan2_step import find_w_avg
    data, root, straight = straight_run
    models = os.path.dirname(straight["run_dir"])
    run = os.path.basename(straight["run_dir"])
    out = str(root / "generated")
    generate.main(["--run", run, "--models-dir", models, "--n", "6", "--out", out,
                   "--truncation", "0.7"])
    assert len([p for p in os.listdir(out) if p.endswith(".png")]) == 6
    # truncation pulls towards the w_avg tracked in training: psi 0 synthesises every
    # image from w_avg itself (only the noise images differ)
    bundle = load_generator(run, models)
    w_avg = find_w_avg(bundle.model.get_layer("mapping")).numpy()
    assert np.abs(w_avg).max() > 0
    _, at_centre = next(generate_images(bundle, 3, truncation=0.0))
    inputs = latent_inputs(bundle, [0, 1, 2])
    synthesis = bundle.model.get_layer("synthesis")
    ws = np.broadcast_to(w_avg, (3,) + tuple(synthesis.inputs[0].shape[1:])).astype("float32")
    expected = to_uint8(synthesis([ws] + list(inputs[1:]), training=False).numpy(), (-1.0, 1.0))
    assert np.abs(at_centre.astype(int) - expected).max() <= 1
    result = evaluate.main(["--real", data, "--run", run, "--models-dir", models, "--n", "16",
                            "--resolution", "16", "--swd-images", "16",
                            "--feature-net", "random-small"])
    assert result["swd"]["average"] > 0
    # classify.py --synthetic CLASS=RUN's one call into a GAN run
    from skingan.benefit.sources import generate_from_run
    assert generate_from_run(run, 5, 0, models, min_resolution=16).shape == (5, 16, 16, 3)
    assert train.main(["--check-run", run, "--models-dir", models]) > 0
    assert "files ok" in capsys.readouterr().out


@pytest.mark.slow
def test_a_run_scores_during_training_and_is_a_classify_run_source(straight_run):
    from skingan.benefit import sources
    from skingan.errors import UserError
    _, root, result = straight_run
    models, run = os.path.dirname(result["run_dir"]), os.path.basename(result["run_dir"])
    assert result["step"] == 10
    rows = np.genfromtxt(os.path.join(result["results_dir"], "losses.csv"), delimiter=",",
                         names=True)
    assert np.all(np.isfinite([rows[k] for k in rows.dtype.names]))
    # the sample grid, and the quality scores of iterations 6 and 10 (the run's end)
    assert os.path.isfile(os.path.join(result["results_dir"], "samples_000010.png"))
    scores = np.genfromtxt(os.path.join(result["results_dir"], "metrics.csv"), delimiter=",",
                           names=True)
    assert scores["step"].tolist() == [6, 10] and np.all(scores["swd"] > 0)
    assert os.path.isfile(os.path.join(result["run_dir"], "generator_best.keras"))
    # classify.py --synthetic CLASS=RUN: the run resolves as a run source, passes the leak
    # check against a split whose training fold holds its images (and fails one whose test
    # fold does), and generates the class's images into a folder with its provenance
    source = sources.resolve("df", run, models)
    assert source.kind == "run"
    trained = sources.read_trained_images(source.path)
    assert trained and len(trained) == 12
    split = dict({image: "train" for image in trained}, other="test")
    sources.check_leak(source, split, log=quiet)
    assert (source.provenance, source.trained_on) == ("training fold only", 12)
    with pytest.raises(UserError, match="trained on 1 validation/test"):
        sources.check_leak(sources.resolve("df", run, models),
                           dict(split, **{sorted(trained)[0]: "test"}), log=quiet)
    sources.check_run(source, models, min_resolution=16)
    out = str(root / "synthetic-df")
    sources.materialise_run(source, 3, 0, models, out, min_resolution=16, log=quiet)
    assert sorted(os.listdir(out)) == ["seed000000.png", "seed000001.png", "seed000002.png",
                                       "trained_images.txt"]


@pytest.mark.slow
def test_conditional_bf16_diffaugment_run_trains_and_generates_by_class(tmp_path, demo_set):
    import generate
    result = train_tiny(tmp_path, demo_set, conditional=True, class_name="all", steps=2,
                        sample_every=2, checkpoint_every=2, mixed_precision=True,
                        augment="color,translation")
    rows = np.genfromtxt(os.path.join(result["results_dir"], "losses.csv"), delimiter=",",
                         names=True)
    assert np.all(np.isfinite([rows[k] for k in rows.dtype.names]))
    assert any(f.endswith(".png") for f in os.listdir(result["results_dir"]))
    out = str(tmp_path / "df")
    generate.main(["--run", os.path.basename(result["run_dir"]), "--models-dir",
                   os.path.dirname(result["run_dir"]), "--n", "2", "--class", "df",
                   "--out", out])
    assert len([f for f in os.listdir(out) if f.endswith(".png")]) == 2
