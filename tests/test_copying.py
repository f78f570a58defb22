"""The data-copying test (skingan/copying.py) on hand-made cases, copies.png, and the rules
built on it."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from conftest import ROOT
from sklearn.datasets import make_moons

from skingan import copying


def moons(n, seed):
    """Points on two 2-D half circles, the paper's own toy data (noise 0.1)."""
    return make_moons(n_samples=n, noise=0.1, random_state=seed)[0]


TRAIN = moons(1000, 1)
HELDOUT = moons(500, 2)


def c_t(generated, cells=5):
    return copying.data_copying_test(TRAIN, HELDOUT, generated, cells=cells, seed=0)["C_T"]


def test_copies_of_the_training_set_are_strongly_negative():
    rng = np.random.default_rng(0)
    copies = TRAIN[rng.choice(len(TRAIN), 500)] + rng.normal(0, 1e-4, (500, 2))
    assert c_t(copies) < -10


def test_fresh_draws_of_the_same_distribution_score_near_zero():
    for seed in (3, 4, 5):
        assert abs(c_t(moons(500, seed))) < 2


def test_blurred_points_and_means_score_positive():
    rng = np.random.default_rng(0)
    # the paper's underfitting KDE: training points blurred by a wide kernel
    blurred = TRAIN[rng.choice(len(TRAIN), 500)] + rng.normal(0, 0.3, (500, 2))
    assert c_t(blurred) > 3
    # means of random pairs of training points lie off the moons, away from every point
    pairs = rng.choice(len(TRAIN), (500, 2))
    assert c_t(TRAIN[pairs].mean(axis=1)) > 3


def test_mann_whitney_z_matches_scipy_u_with_the_normal_approximation():
    from scipy.stats import mannwhitneyu
    rng = np.random.default_rng(0)
    gen, held = rng.normal(0, 1, 37), rng.normal(0.3, 1, 52)
    m, n = len(gen), len(held)
    # U of the generated sample: pairs where the generated distance is the larger one
    u_count = np.sum(gen[:, None] > held[None, :]) + 0.5 * np.sum(gen[:, None] == held[None, :])
    u_scipy = mannwhitneyu(gen, held).statistic
    assert u_count == pytest.approx(u_scipy)
    expected = (u_scipy - m * n / 2) / np.sqrt(m * n * (m + n + 1) / 12)
    assert copying.mann_whitney_z(gen, held) == pytest.approx(expected, rel=1e-12)
    # sign: generated closer than held-out -> negative, U = 0 at the extreme
    assert copying.mann_whitney_z(np.zeros(10), np.ones(10)) == pytest.approx(
        -50 / np.sqrt(100 * 21 / 12))
    assert copying.mann_whitney_z(np.ones(10), np.zeros(10)) > 0


def test_cells_with_too_few_generated_images_are_left_out():
    rng = np.random.default_rng(0)
    # two far clusters on a line: k-means with 2 cells puts each in its own cell
    train = np.concatenate([rng.normal(0, 1, 200), rng.normal(100, 1, 200)])[:, None]
    held = np.concatenate([rng.normal(0, 1, 50), rng.normal(100, 1, 150)])[:, None]
    near_zero = rng.normal(0, 1, 60)[:, None]
    for count, used in ((20, False), (21, True)):
        copies_at_100 = train[200:200 + count] + 1e-6      # copies: a very negative Z_U
        result = copying.data_copying_test(train, held, np.concatenate([near_zero,
                                                                        copies_at_100]), cells=2)
        rows = sorted(result["per_cell"], key=lambda r: r["generated"], reverse=True)
        assert [r["generated"] for r in rows] == [60, count]
        assert rows[1]["used"] is used and rows[0]["used"]
        if used:        # weighted by the held-out share of each cell: 50 and 150 of 200
            expected = (0.25 * rows[0]["z"] + 0.75 * rows[1]["z"]) / 1.0
        else:
            expected = rows[0]["z"]
        assert result["C_T"] == pytest.approx(expected)
        assert result["cells_used"] == (2 if used else 1)


def test_refuses_cells_the_heldout_set_cannot_fill():
    with pytest.raises(copying.CopyingError, match="at least 20 held-out"):
        copying.data_copying_test(TRAIN, HELDOUT[:19], moons(100, 3), cells=5)
    with pytest.raises(copying.CopyingError, match="no cell holds more than 20"):
        copying.data_copying_test(TRAIN, HELDOUT, moons(30, 3), cells=5)
    # all held-out images in one corner of the data: other cells have none
    corner = HELDOUT[HELDOUT[:, 0] < -0.5]
    with pytest.raises(copying.CopyingError, match="every cell needs both"):
        copying.data_copying_test(TRAIN, corner, moons(500, 3), cells=5)


def test_near_copy_fraction_finds_the_known_copies():
    rng = np.random.default_rng(0)
    train, held = rng.normal(0, 1, (300, 8)), rng.normal(0, 1, (300, 8))
    copies = train[rng.choice(300, 30, replace=False)]
    generated = np.concatenate([copies, rng.normal(0, 1, (270, 8))])
    per_image = copying.nearest_copies(train, held, generated)
    assert per_image["near_copy"][:30].all()
    assert np.all(per_image["distance"][:30] == 0)
    # 30 copies, and about 5 % of the 270 fresh draws
    assert 30 / 300 <= per_image["near_copy_fraction"] <= (30 + 0.1 * 270) / 300
    assert np.median(per_image["relative"][30:]) == pytest.approx(1, abs=0.15)
    fresh = copying.nearest_copies(train, held, rng.normal(0, 1, (2000, 8)))
    assert fresh["near_copy_fraction"] == pytest.approx(0.05, abs=0.03)


def test_pixel_feature_standardises_with_the_training_set():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (20, 64, 64, 3), np.uint8)
    other = rng.integers(0, 256, (5, 16, 16, 3), np.uint8)
    f_train, f_other = copying.pixel_features(train, other)
    assert f_train.shape == (20, 3072) and f_other.shape == (5, 3072)
    np.testing.assert_allclose(f_train.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(f_train.std(axis=0), 1, atol=1e-3)


def test_copies_png_pairs_each_generated_image_with_its_nearest_training_image(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (40, 16, 16, 3), np.uint8)
    copied = rng.permutation(40)[:16]
    generated = np.concatenate([rng.integers(0, 256, (10, 16, 16, 3), np.uint8),
                                train[copied]])
    f_train, f_held, f_gen = copying.pixel_features(
        train, rng.integers(0, 256, (30, 16, 16, 3), np.uint8), generated)
    per_image = copying.nearest_copies(f_train, f_held, f_gen)
    path = str(tmp_path / "copies.png")
    pairs = copying.save_copies_png(path, generated, train, per_image)
    assert sorted(g for g, _, _ in pairs) == list(range(10, 26))        # the 16 copies
    assert all(t == copied[g - 10] and d < 1e-3 for g, t, d in pairs)
    grid = np.asarray(Image.open(path))
    pad, side = 2, 16
    for k, (g, t, _) in enumerate(pairs):
        row, slot = divmod(k, 4)
        y = pad + row * (side + pad)
        x_gen, x_train = pad + 2 * slot * (side + pad), pad + (2 * slot + 1) * (side + pad)
        np.testing.assert_array_equal(grid[y:y + side, x_gen:x_gen + side], generated[g])
        np.testing.assert_array_equal(grid[y:y + side, x_train:x_train + side], train[t])


# ----------------------------------------------------------------------------------------------
# evaluate.py --copying, as a user runs it
# ----------------------------------------------------------------------------------------------

def write_set(folder, images, prefix):
    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(os.path.join(folder, f"{prefix}{i:03d}.png"))
    return str(folder)


def blobs(n, seed, size=16):
    """n images of a bright square at a random place on a random dark background."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, size, size, 3), np.uint8)
    for img in out:
        img[:] = rng.integers(0, 60, 3)
        y, x = rng.integers(0, size - 6, 2)
        img[y:y + 6, x:x + 6] = rng.integers(120, 256, 3)
    return out


def run_evaluate(args, home):
    env = dict(os.environ, HOME=str(home), KERAS_HOME=str(home / "keras"),
               CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, os.path.join(ROOT, "evaluate.py")] + args,
                          capture_output=True, text=True, env=env, cwd=str(home), timeout=300)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    base = tmp_path_factory.mktemp("copying")
    train = blobs(60, 0)
    return base, train, write_set(base / "train", train, "t"), \
        write_set(base / "heldout", blobs(40, 1), "h")


def one_error_line(proc):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), \
        proc.stderr
    return lines[0]


def test_evaluate_refuses_a_heldout_set_too_small_for_the_cells(sets):
    base, train, train_dir, _ = sets
    small = write_set(base / "small", blobs(3, 2), "s")
    fake = write_set(base / "fake_small", blobs(30, 3), "f")
    line = one_error_line(run_evaluate(["--copying", "--train", train_dir, "--heldout", small,
                                        "--fake", fake], base))
    assert "needs at least 20 held-out images" in line and "got 3" in line


def error_line_in_process(args, home, monkeypatch, capsys):
    """evaluate.py's main in this interpreter, through run_cli as the script runs it (the
    subprocess test above shows the same through a fresh interpreter): exit code 2 and one
    'error: ' line."""
    import evaluate
    from skingan.errors import run_cli
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(home / "keras"))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_cli(evaluate.main, args)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_evaluate_refuses_heldout_images_that_are_training_images(sets, monkeypatch, capsys):
    base, train, train_dir, heldout_dir = sets
    fake = write_set(base / "fake_overlap", blobs(30, 3), "f")
    # the same file name (image id) in both sets
    same_id = write_set(base / "same_id", np.concatenate([blobs(23, 4), train[:1]]), "t")
    line = error_line_in_process(["--copying", "--train", train_dir, "--heldout", same_id,
                                  "--fake", fake], base, monkeypatch, capsys)
    assert "same id" in line
    # a training image under another name
    same_pixels = write_set(base / "same_pixels", np.concatenate([blobs(23, 4), train[5:6]]),
                            "p")
    line = error_line_in_process(["--copying", "--train", train_dir, "--heldout", same_pixels,
                                  "--fake", fake], base, monkeypatch, capsys)
    assert "same pixels" in line and "t005.png" in line


@pytest.mark.slow
def test_evaluate_copying_of_copies_reports_a_strongly_negative_c_t(sets):
    base, train, train_dir, heldout_dir = sets
    fake = write_set(base / "fake_copies", train, "f")       # the training set, renamed
    out = base / "copying.json"
    proc = run_evaluate(["--copying", "--train", train_dir, "--heldout", heldout_dir,
                         "--fake", fake, "--cells", "2", "--verbose", "--json", str(out)], base)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())["copying"]
    assert report["feature"] == "pixels-32" and report["cells"] == 2
    assert report["C_T"] < -3 and report["copies"]
    assert report["near_copy_fraction"] == 1.0
    assert "C_T" in proc.stdout and "COPIES" in proc.stdout and "Z_U" in proc.stdout
    assert os.path.isfile(report["copies_png"])


# ----------------------------------------------------------------------------------------------
# During training: C_T beside SWD, and the best generator is one that does not copy
# ----------------------------------------------------------------------------------------------

def test_the_best_rule_skips_a_copying_generator():
    from skingan.quality import beats_best
    assert beats_best(10.0, 20.0, c_t=-0.5)
    assert not beats_best(10.0, 20.0, c_t=-3.5)           # better SWD, but it copies
    assert beats_best(10.0, 20.0, c_t=None)               # no held-out images: SWD alone
    assert not beats_best(30.0, 20.0, c_t=0.0)


def test_tracker_logs_c_t_and_never_keeps_a_copying_generator(tmp_path):
    import csv

    from skingan.quality import QualityTracker
    train, heldout, fresh = blobs(120, 0), blobs(80, 1), blobs(120, 2)
    lines = []
    tracker = QualityTracker(train, 120, seed=0, results_dir=str(tmp_path), log=lines.append,
                             heldout_uint8=heldout, cells=3)
    tracker.start_log(0)
    zeros = lambda normal, n: np.zeros((n, 1), np.float32)   # noqa: E731  inputs unused
    outcomes = []
    for step, fakes in ((10, train), (20, fresh), (30, train)):
        scores, improved = tracker.evaluate(step, lambda _inputs, f=fakes: f, zeros)
        if improved:                           # as events.QualityScore does
            tracker.record_best(step, scores)
        outcomes.append((scores, improved))
    (copy1, best1), (fresh_s, best2), (copy2, best3) = outcomes
    assert copy1["c_t"] < -3 and not best1             # the lowest SWD, but a copy
    assert abs(fresh_s["c_t"]) < 3 and best2
    assert copy2["swd"] < fresh_s["swd"] and not best3
    assert float(tracker.best.numpy()) == pytest.approx(fresh_s["swd"])
    assert sum("warning: C_T" in line for line in lines) == 2
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "swd", "fid", "c_t", "near_copies"]
    assert [r[0] for r in rows[1:]] == ["10", "20", "30"] and float(rows[1][4]) == 1.0


def test_classify_sources_get_c_t_with_as_many_cells_as_the_heldout_set_fills():
    from skingan.benefit.sources import Source, check_copying, copying_text
    train, heldout = blobs(60, 0), blobs(12, 1)          # a rare class: 12 held-out images
    source = Source("df", "run", "run", "/nowhere")
    info = check_copying(source, train, heldout, np.concatenate([train] * 2))
    assert 1 <= info["cells"] <= 3 and info["C_T"] < -3 and info["copies"]
    assert source.copying is info and "C_T" in copying_text(info)
    empty = check_copying(Source("df", "x", "folder", "/nowhere"), train, heldout, train[:0])
    assert empty["C_T"] is None and "not tested" in copying_text(empty)


def test_a_runs_heldout_set_is_every_image_of_its_data_it_did_not_train_on(tmp_path):
    """evaluate.py --run RUN --copying: config.json names the data, trained_images.txt what
    the run trained on; every other image of the data is held out."""
    import argparse

    from skingan.evaluation import copying_sources
    data = write_set(tmp_path / "data", blobs(50, 0), "img")
    run_dir = tmp_path / "models" / "r"
    run_dir.mkdir(parents=True)
    trained = [f"img{i:03d}" for i in range(0, 50, 2)]          # the even half
    (run_dir / "trained_images.txt").write_text("\n".join(trained) + "\n")
    (run_dir / "config.json").write_text(json.dumps(
        {"settings": {"conditional": False}, "data": {"path": data, "labels": None,
                                                       "class": None}}))
    args = argparse.Namespace(run="r", models_dir=str(tmp_path / "models"), train=None,
                              heldout=None, labels=None, class_name=None, cells=5)
    train, heldout, _ = copying_sources(args)
    stem = lambda p: os.path.splitext(os.path.basename(p))[0]    # noqa: E731
    assert sorted(map(stem, train.paths)) == trained
    assert sorted(map(stem, heldout.paths)) == [f"img{i:03d}" for i in range(1, 50, 2)]
    args.cells = 7                                   # 25 held-out images fill only 6 cells
    with pytest.raises(copying.CopyingError, match="needs at least 28 held-out images"):
        copying_sources(args)


def test_training_holds_out_what_exclude_leaves_out(tmp_path):
    import data_loader
    from skingan.loop import load_heldout
    data = write_set(tmp_path / "data", blobs(30, 0), "img")
    exclude = tmp_path / "split.csv"
    exclude.write_text("image,fold\n" + "".join(
        f"img{i:03d},{'train' if i < 20 else 'test'}\n" for i in range(30)))
    images, info = data_loader.load_data(data, resolution=16, exclude=str(exclude),
                                         log=lambda *a: None)
    cfg = dict(exclude=str(exclude), conditional=False, resolution=16, crop="resize")
    held = load_heldout(cfg, info, images, None, log=lambda *a: None)
    assert held.shape == (10, 16, 16, 3) and len(images) == 20
    lines = []
    assert load_heldout(dict(cfg, exclude=None), info, images, None, lines.append) is None
