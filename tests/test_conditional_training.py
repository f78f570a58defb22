"""Class-conditional training end to end: the labelled stream and its class balance, labels
reaching the step aligned with their images (a tiny G learns which class is which colour),
per-class grids, generate.py --class, per-class evaluation, resume and refusals."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import data_loader
import evaluate
import generate
import train
from conftest import quiet
from skingan import images as image_io
from skingan import sampling
from skingan.errors import UserError, run_cli

COLOURS = {"blue": (40, 60, 220), "green": (40, 200, 60), "red": (220, 50, 40)}


def write_colour_classes(root, counts, size=16, seed=0):
    """Class folders whose class decides the colour: flat colour plus a little noise."""
    rng = np.random.default_rng(seed)
    for name, n in counts.items():
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(n):
            img = np.array(COLOURS[name], np.float32) + rng.normal(0, 10, (size, size, 3))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
                os.path.join(folder, f"{name}{i:03d}.png"))
    return str(root)


@pytest.fixture
def colour_data(tmp_path):
    return write_colour_classes(tmp_path / "colours", {"red": 12, "blue": 6, "green": 9})


def run_train(tmp_path, *flags):
    return train.main(["--model", "dcgan", "--resolution", "16", "--batch-size", "8",
                       "--channel-scale", "0.125", "--log-every", "2", "--sample-every", "4",
                       "--checkpoint-every", "4", "--cache-dir", "none",
                       "--models-dir", str(tmp_path / "models"),
                       "--results-dir", str(tmp_path / "results"), *flags])


def refusal(capsys, main, argv):
    """The one `error:` line of a script's main refusing argv, run as the script runs it
    (errors.run_cli: exit code 2, no traceback)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        run_cli(main, argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


# ---------------------------------------------------------------------------------------------
# The labelled stream


def test_labelled_data_gives_each_image_its_class(colour_data):
    images, class_ids, info = data_loader.load_labelled_data(colour_data, classes="all",
                                                             resolution=16, log=quiet)
    assert info["classes"] == ["blue", "green", "red"]          # 'all': alphabetical
    assert info["class_counts"] == [6, 9, 12]
    assert images.shape == (27, 16, 16, 3) and class_ids.shape == (27,)
    for k, name in enumerate(info["classes"]):                  # colour matches the label
        mean = images[class_ids == k].reshape(-1, 3).mean(axis=0)
        assert np.argmax(mean) == np.argmax(COLOURS[name])
    # a list keeps the order given, matched case-insensitively
    _, ids, info = data_loader.load_labelled_data(colour_data, classes=["RED", "blue"],
                                                  resolution=16, log=quiet)
    assert info["classes"] == ["red", "blue"] and list(np.bincount(ids)) == [12, 6]


def test_labelled_data_refuses_unknown_class_and_a_single_class(colour_data):
    with pytest.raises(data_loader.DataError, match="'violet' not found.*blue, green, red"):
        data_loader.load_labelled_data(colour_data, classes=["red", "violet"], log=quiet)
    with pytest.raises(data_loader.DataError, match="two or more classes"):
        data_loader.load_labelled_data(colour_data, classes=["red"], log=quiet)
    assert data_loader.parse_class_list(" df, vasc ,nv") == ["df", "vasc", "nv"]
    assert data_loader.parse_class_list("ALL") == "all"


def test_stream_labels_stay_aligned_and_follow_the_class_balance():
    # image k is filled with the value k, so a batch tells which images it holds
    n = 40
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None],
                             (n, 4, 4, 3)).copy()
    class_ids = np.array([0] * 32 + [1] * 6 + [2] * 2, np.int32)    # 80 % / 15 % / 5 %
    draws = {}
    for balance in ("data", "uniform", "sqrt"):
        labels = []
        for step in range(150):
            batch, batch_labels = data_loader.make_batch(
                images, step, 16, seed=3, classes=data_loader.ClassSampler(class_ids, balance))
            np.testing.assert_array_equal(class_ids[batch[:, 0, 0, 0]], batch_labels)
            labels.append(batch_labels)
        draws[balance] = np.bincount(np.concatenate(labels), minlength=3) / (150 * 16)
    np.testing.assert_allclose(draws["data"], [0.8, 0.15, 0.05], atol=1e-9)  # exact per epoch
    np.testing.assert_allclose(draws["uniform"], [1 / 3] * 3, atol=0.04)
    sqrt = np.sqrt([32, 6, 2]) / np.sqrt([32, 6, 2]).sum()
    np.testing.assert_allclose(draws["sqrt"], sqrt, atol=0.04)
    # 'data' streams exactly the images of the unconditional stream
    for step in (0, 7):
        plain = data_loader.make_batch(images, step, 16, seed=3)
        labelled, _ = data_loader.make_batch(images, step, 16, seed=3,
                                             classes=data_loader.ClassSampler(class_ids))
        np.testing.assert_array_equal(plain, labelled)


def test_dataset_yields_image_label_pairs():
    images = np.zeros((6, 4, 4, 3), np.uint8)
    images[3:] = 255
    ds = data_loader.make_dataset(images, 4, class_ids=np.array([0, 0, 0, 1, 1, 1]),
                                  class_balance="uniform")
    batch, labels = next(iter(ds))
    assert batch.shape == (4, 4, 4, 3) and labels.dtype.name == "int32"
    np.testing.assert_array_equal(batch.numpy()[:, 0, 0, 0], labels.numpy().astype(float))


# ---------------------------------------------------------------------------------------------
# Training


def class_means(run_dir, classes, n=32):
    """Mean RGB of n generated images per class, from the run's export."""
    bundle = sampling.load_generator(run_dir)
    means = {}
    for name in classes:
        batches = [b for _, b in sampling.generate_images(bundle, n, label=bundle.class_index(name))]
        means[name] = np.concatenate(batches).reshape(-1, 3).mean(axis=0)
    return means


@pytest.mark.slow
def test_a_tiny_conditional_generator_learns_which_class_is_which_colour(tmp_path, colour_data):
    result = run_train(tmp_path, "--data", colour_data, "--conditional", "--steps", "160",
                       "--sample-every", "160", "--checkpoint-every", "160", "--log-every",
                       "40", "--lr", "0.002")
    means = class_means(result["run_dir"], ["red", "green", "blue"])
    # each class's images are brightest in its own colour's channel, by a clear margin
    for name, channel in (("red", 0), ("green", 1), ("blue", 2)):
        others = [means[name][c] for c in range(3) if c != channel]
        assert means[name][channel] > max(others) + 40, means


def test_conditional_run_records_classes_and_draws_one_grid_row_per_class(tmp_path,
                                                                          colour_data,
                                                                          monkeypatch):
    from skingan.monitoring import HealthMonitor
    checked = []     # what the loop gives the health monitor at each grid
    original = HealthMonitor.check_samples
    monkeypatch.setattr(HealthMonitor, "check_samples",
                        lambda self, *args: checked.append(args) or original(self, *args))
    result = run_train(tmp_path, "--data", colour_data, "--conditional", "--class",
                       "red,blue", "--steps", "4", "--class-balance", "sqrt")
    with open(os.path.join(result["run_dir"], "config.json")) as f:
        settings = json.load(f)["settings"]
    assert settings["classes"] == ["red", "blue"] and settings["class_counts"] == [12, 6]
    assert settings["class_balance"] == "sqrt"
    assert settings["vflip"] and settings["rot90"]        # turned on by the balance
    assert os.path.basename(result["run_dir"]) == "dcgan-cond-red-blue-16px"
    grid = np.asarray(Image.open(os.path.join(result["results_dir"], "samples_000004.png")))
    expected = image_io.make_grid(np.zeros((2 * 8, 16, 16, 3), np.uint8), 2, 8)
    assert grid.shape == expected.shape                   # 2 classes x 8 fixed latents
    # the monitor judges the grid class by class: each row's label, each class's own reals
    step, fakes, real_diversity, labels, names = checked[-1]
    assert step == 4 and fakes.shape == (16, 16, 16, 3) and names == ["red", "blue"]
    np.testing.assert_array_equal(labels, [0] * 8 + [1] * 8)
    assert sorted(real_diversity) == [0, 1] and min(real_diversity.values()) > 0
    with open(os.path.join(result["run_dir"], "trained_images.txt")) as f:
        assert len(f.read().split()) == 18                # red and blue images only


def test_grid_shows_at_most_eight_classes(tmp_path):
    from skingan import events
    from skingan.components import build_components
    from skingan.config import new_run_settings
    cfg = new_run_settings(dict(model="dcgan", data="unused", resolution=16,
                                channel_scale=0.125, conditional=True))
    cfg.update(classes=[f"c{k}" for k in range(10)], class_counts=[5] * 10)
    parts = build_components(cfg, compile_step=False)
    inputs, rows = events.class_grid_inputs(parts, 8)
    assert rows == 8
    np.testing.assert_array_equal(inputs[1], np.repeat(np.arange(8), 8))
    np.testing.assert_array_equal(inputs[0][:8], inputs[0][8:16])   # same latents per row


@pytest.fixture(scope="module")
def sl_conditional_runs(tmp_path_factory):
    """A conditional SL-StyleGAN run with lazy R1 (--r1-every 2), straight to 6 iterations,
    and the same run stopped at 3 and resumed to 6: (straight, resumed). Serves the resume,
    lazy-R1 and truncation tests below (one set of runs instead of one each)."""
    tmp = tmp_path_factory.mktemp("slcond")
    data = write_colour_classes(tmp / "colours", {"red": 12, "blue": 6, "green": 9})
    flags = ["--data", data, "--conditional", "--model", "sl-stylegan", "--checkpoint-every",
             "3", "--class-balance", "uniform", "--r1-every", "2", "--log-every", "1"]
    straight = run_train(tmp / "a", *flags, "--steps", "6")
    assert run_train(tmp / "b", *flags, "--steps", "3")["step"] == 3
    return straight, run_train(tmp / "b", *flags, "--steps", "6")


@pytest.mark.slow
def test_conditional_resume_is_bit_identical(sl_conditional_runs):
    """What a conditional run adds to resuming (the labelled stream's class draws, the fake
    labels from the checkpointed generator) is the loop's and steps._label_drawer's, the same
    for both families; SL-StyleGAN's step draws two label sets (and R1 takes them), so it is
    the family run here, stopped inside a lazy-R1 cycle (3 % 2 = 1). DCGAN's resume is
    test_training's."""
    from test_training import checkpoint_values
    straight, resumed = sl_conditional_runs
    assert resumed["step"] == 6
    a, b = checkpoint_values(straight), checkpoint_values(resumed)
    assert a.keys() == b.keys()
    assert len(a) > 20
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_resume_refuses_another_class_list_or_changed_classes(tmp_path, colour_data):
    flags = ["--data", colour_data, "--conditional", "--steps", "2", "--run", "r"]
    run_train(tmp_path, *flags, "--class", "red,blue")
    with pytest.raises(UserError, match="--class was 'red,blue', now 'red,blue,green'"):
        run_train(tmp_path, *flags, "--class", "red,blue,green")
    # 'all' over data that gained a class is another experiment, refused
    run_train(tmp_path, *flags[:-1], "all-run", "--class", "all")
    os.rename(os.path.join(colour_data, "green"), os.path.join(colour_data, "green2"))
    with pytest.raises(UserError, match="classes blue 6, green 9, red 12.*green2"):
        run_train(tmp_path, *flags[:-1], "all-run", "--class", "all", "--steps", "4")


@pytest.mark.parametrize("flags, message", [
    (["--class-balance", "uniform"], "--class-balance needs --conditional"),
    (["--class", "red,blue"], "add --conditional"),
])
def test_conditional_flags_without_conditional_are_refused(tmp_path, colour_data, flags,
                                                           message, capsys):
    assert message in refusal(capsys, train.main, ["--data", colour_data, *flags,
                                                   "--models-dir", str(tmp_path / "m")])
    assert not os.path.exists(tmp_path / "m")          # refused before anything is written


# ---------------------------------------------------------------------------------------------
# Downstream: generate.py, evaluate.py, classify's sources


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cond")
    data = write_colour_classes(tmp / "colours", {"red": 12, "blue": 6, "green": 9})
    result = run_train(tmp, "--data", data, "--conditional", "--steps", "4")
    return data, result["run_dir"]


def test_generate_class_all_writes_one_folder_per_class(tmp_path, conditional_run):
    _, run_dir = conditional_run
    out = tmp_path / "gen"
    generate.main(["--run", run_dir, "--class", "all", "--n", "3", "--out", str(out)])
    assert sorted(os.listdir(out)) == ["blue", "green", "red"]
    for name in ("blue", "green", "red"):
        assert sorted(os.listdir(out / name)) == [
            "seed0000.png", "seed0001.png", "seed0002.png", "trained_images.txt"]
    # one class, the same latents: the same images as that class's subfolder
    generate.main(["--run", run_dir, "--class", "GREEN", "--n", "2", "--out", str(tmp_path / "g")])
    for name in ("seed0000.png", "seed0001.png"):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "g" / name)),
                                      np.asarray(Image.open(out / "green" / name)))


@pytest.mark.parametrize("flags, message", [
    (["--class", "violet"], "class 'violet' is not one of this run's classes: blue, green, red"),
    ([], "needs --class: one of blue, green, red, or all"),
])
def test_generate_refuses_unknown_or_missing_class(tmp_path, conditional_run, flags, message,
                                                   capsys):
    _, run_dir = conditional_run
    assert message in refusal(capsys, generate.main, ["--run", run_dir, "--n", "2",
                                                      "--out", str(tmp_path / "x"), *flags])


@pytest.mark.slow
def test_truncation_centre_is_per_class(sl_conditional_runs):
    result, _ = sl_conditional_runs
    bundle = sampling.load_generator(result["run_dir"])
    from SL_StyleGAN import get_mapping
    mapping = get_mapping(bundle.model)
    z = np.random.RandomState(0).standard_normal((sampling.W_AVG_SAMPLES, 100)).astype("float32")
    for label in (0, 2):
        expected = mapping.predict([z, np.full(len(z), label, np.int32)], verbose=0).mean(axis=0)
        np.testing.assert_allclose(bundle.w_avg(label), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(bundle.w_avg(0), bundle.w_avg(2))
    # psi = 0 replaces every style by its class's centre: with one centre for all classes
    # the class would then make no difference (the seeds fix the noise inputs)
    first = next(sampling.generate_images(bundle, 4, truncation=0.0, label=0))[1]
    third = next(sampling.generate_images(bundle, 4, truncation=0.0, label=2))[1]
    assert np.abs(first.astype(int) - third).max() > 0


def test_evaluate_scores_each_class_against_its_own_reals(tmp_path, conditional_run):
    data, run_dir = conditional_run
    out = tmp_path / "scores.json"
    evaluate.main(["--real", data, "--run", run_dir, "--n", "16", "--feature-net",
                   "random-small", "--swd-images", "16", "--json", str(out)])
    with open(out) as f:
        result = json.load(f)
    assert result["classes"] == ["blue", "green", "red"]
    assert [result["per_class"][c]["n_real"] for c in result["classes"]] == [6, 9, 12]
    swd = [result["per_class"][c]["swd"]["average"] for c in result["classes"]]
    assert result["mean"]["swd"] == pytest.approx(np.mean(swd))
    one = evaluate.main(["--real", data, "--run", run_dir, "--class", "Red", "--n", "16",
                         "--feature-net", "random-small", "--swd-images", "16"])
    assert one["classes"] == ["red"]


def test_evaluate_without_inception_weights_says_so_once(tmp_path, conditional_run, capsys,
                                                         monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))     # empty; the suite is offline
    data, run_dir = conditional_run
    result = evaluate.main(["--real", data, "--run", run_dir, "--n", "8", "--swd-images", "8"])
    said = [line for line in capsys.readouterr().out.splitlines() if "skipped" in line]
    assert len(said) == 1, said
    assert len(said[0].replace(str(tmp_path / "keras" / "models"), "")) < 200
    assert said[0].startswith("FID, KID, precision and recall skipped: no inception_v3_")
    assert said[0].endswith("; how to get them: evaluate.py --help")
    assert all(result["per_class"][c]["fid"] is None for c in result["classes"])


def test_classifier_sources_take_one_class_each_from_a_conditional_run(conditional_run):
    from skingan.benefit import sources
    _, run_dir = conditional_run
    bundle = sampling.load_generator(run_dir)
    red = sources.generate_from_run(run_dir, 3, 0, os.path.dirname(run_dir), 16, "red")
    expected = next(sampling.generate_images(bundle, 3, label=bundle.class_index("red")))[1]
    np.testing.assert_array_equal(red, expected)
    with pytest.raises(UserError, match="--synthetic violet=.*blue, green, red"):
        sources.generate_from_run(run_dir, 3, 0, os.path.dirname(run_dir), 16, "violet")


@pytest.mark.slow
def test_lazy_r1_takes_the_labels_on_both_branches(sl_conditional_runs):
    """--r1-every 2: even iterations run the R1 branch, odd ones the plain one; both give the
    conditional D its labels."""
    result, _ = sl_conditional_runs
    rows = np.genfromtxt(os.path.join(result["results_dir"], "losses.csv"), delimiter=",",
                         names=True)
    np.testing.assert_array_equal(rows["step"], np.arange(1, 7))
    assert np.all(rows["r1"][0::2] > 0) and np.all(rows["r1"][1::2] == 0), rows["r1"]
