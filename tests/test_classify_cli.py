"""classify.py end to end on a tiny demo set: the report agrees with report.json, synthetic
images stay in the training fold, the GAN leak check, the demo's GAN adapter, and bad input
gets one line and exit code 2."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import classify
import data_loader
from skingan.benefit import demo, experiment, report, sources, split as split_module
from skingan.errors import run_cli
from conftest import SMALL_COUNTS, quiet

GREEN = (0, 255, 0)     # the synthetic test images: no real image is pure green


def green_folder(folder, n=6, size=24):
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (size, size), GREEN).save(os.path.join(folder, f"fake_{i}.png"))
    return str(folder)


def argv(tmp_path, data, *extra):
    return ["--data", data, "--backbone", "small", "--resolution", "16", "--epochs", "2",
            "--patience", "1", "--batch-size", "16", "--repeats", "2", "--name", "t",
            "--results-dir", str(tmp_path / "results"), "--models-dir", str(tmp_path / "models"),
            "--cache-dir", "none", *extra]


def one_line_error(capsys, args):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(classify.main, args)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, demo_set):
    """classify.py run as a user starts it (a fresh interpreter, TensorFlow's own log level),
    3 arms x 2 repeats, with 5 of 6 synthetic images for a class named in capitals:
    (process, output folder)."""
    import subprocess
    import sys
    from conftest import ROOT
    tmp = tmp_path_factory.mktemp("classify")
    args = argv(tmp, demo_set, "--synthetic", f"DF={green_folder(tmp / 'fake')}", "--add", "5")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "classify.py")] + args,
                          capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env={k: v for k, v in os.environ.items()
                               if k != "TF_CPP_MIN_LOG_LEVEL"})
    return proc, tmp / "results" / "benefit-t"


@pytest.mark.slow
def test_report_files_agree_with_report_json(cli_run):
    proc, out = cli_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "report.json") as f:
        saved = json.load(f)
    assert set(saved["verdicts"]["synthetic"]) == {"df"}
    assert set(saved["arms"]) == {"real", "oversample", "synthetic"}
    assert saved["sources"]["synthetic"][0]["provenance"] == "unknown"
    assert saved["sources"]["synthetic"][0]["used"] == 5
    markdown = (out / "report.md").read_text()
    for arm, info in saved["arms"].items():
        assert len(info["repeats"]) == 2
        for key in ("balanced_accuracy", "accuracy", "macro_f1", "sensitivity/df", "auc/df"):
            assert f"| {report.fmt(info['summary'][key])} |" in markdown, (arm, key)
    for pair, diff in saved["differences"].items():
        assert f"| {pair} |" in markdown
        assert report.fmt(diff["balanced_accuracy"], signed=True) in markdown
    verdict = saved["verdicts"]["synthetic"]["df"]
    assert f"df (synthetic): **{verdict['verdict']}**" in markdown
    # beside the verdict: df's test images and lesions, counted here from split.csv and the
    # demo set's metadata
    with open(out / "split.csv") as f:
        rows = [line.split(",") for line in f.read().splitlines()[1:]]
    test_df = [r for r in rows if r[1] == "df" and r[3] == "test"]
    lesions = {r[2] for r in test_df}
    assert verdict["test_images"] == len(test_df) and verdict["test_lesions"] == len(lesions)
    assert f"test: {len(test_df)} images from {len(lesions)} lesions; detectable: " in markdown
    assert verdict["detectable"] == pytest.approx(
        max(1 / len(test_df), verdict["vs_oversample"]["half_width"]))
    for name in saved["figures"]:
        assert (out / name).stat().st_size > 0
    assert {"confusion_real.png", "per_class_sensitivity.png", "training_curves.png"} \
        <= set(saved["figures"])
    assert len((out / "split.csv").read_text().splitlines()) == 1 + sum(SMALL_COUNTS.values())


def test_synthetic_images_only_ever_enter_the_training_fold(tmp_path, demo_set, monkeypatch):
    seen = []

    def record(settings, train_set, val_images, val_labels, test_images, num_classes, seed,
               tag="", log=print):
        seen.append((tag, train_set, val_images, test_images))
        return {"probabilities": np.full((len(test_images), num_classes), 1 / num_classes),
                "history": {"loss": [1.0], "val_loss": [1.0]}, "best_epoch": 1,
                "epochs_run": 1, "seconds": 0.0}

    monkeypatch.setattr(experiment, "fit_and_predict", record)
    classify.main(argv(tmp_path, demo_set, "--synthetic", f"df={green_folder(tmp_path / 'g')}"))

    def is_green(images):          # (N, R, R, 3) -> (N,) bool
        return np.all(images == np.array(GREEN, np.uint8), axis=(1, 2, 3))

    assert len(seen) == 6          # 3 arms x 2 repeats
    for tag, train_set, val_images, test_images in seen:
        assert not is_green(val_images).any() and not is_green(test_images).any(), tag
        green = is_green(train_set.images)
        assert np.array_equal(green, train_set.origin == "synthetic"), tag
        assert green.any() == tag.startswith("[synthetic"), tag
    # the default addition raises df to the median training-fold class count
    train_counts = np.bincount(seen[0][1].labels)
    assert is_green(seen[-1][1].images).sum() == int(np.median(train_counts)) - train_counts[1]


def make_split(tmp_path, data):
    records = data_loader.list_labelled_images(data)
    path = str(tmp_path / "split.csv")
    split, _ = split_module.load_or_make_split(path, records, log=quiet)
    return path, split


def fake_run(models_dir, name, trained_ids):
    run_dir = os.path.join(models_dir, name)
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump({"settings": {"model": "dcgan"}, "value_range": [-1.0, 1.0]}, f)
    with open(os.path.join(run_dir, sources.TRAINED_IMAGES), "w") as f:
        f.writelines(i + "\n" for i in trained_ids)
    return run_dir


def test_a_gan_that_saw_test_images_is_refused(tmp_path, demo_set, capsys):
    split_path, split = make_split(tmp_path, demo_set)
    held_out = sorted(i for i, fold in split.items() if fold != "train")[:3]
    train_ids = sorted(i for i, fold in split.items() if fold == "train")[:10]
    fake_run(str(tmp_path / "models"), "leaky", train_ids + held_out)
    err = one_line_error(capsys, argv(tmp_path, demo_set, "--synthetic", "df=leaky",
                                      "--split", split_path))
    assert "trained on 3 validation/test images" in err


def test_a_run_smaller_than_the_classifier_input_is_refused(tmp_path, demo_set, capsys):
    import dcgan
    split_path, split = make_split(tmp_path, demo_set)
    run_dir = fake_run(str(tmp_path / "models"), "tiny",
                       [i for i, fold in split.items() if fold == "train"])
    dcgan.build_generator(resolution=16, latent_dim=4, base_filters=4).save(
        os.path.join(run_dir, "generator.keras"))
    err = one_line_error(capsys, argv(tmp_path, demo_set, "--synthetic", "df=tiny",
                                      "--split", split_path, "--resolution", "32"))
    assert "makes 16x16 images, smaller than the classifier's --resolution 32" in err


@pytest.mark.parametrize("case, expected", [
    ("unknown-class", "class 'melanoma' not found in the data; classes present: bkl, df, mel, nv"),
    ("empty-folder", "the folder holds no images"),
    ("small-images", "6 images are smaller than the classifier's --resolution 16"),
    ("repeats-0", "argument --repeats: must be positive, got 0"),
    ("no-equals", "--synthetic takes CLASS=SOURCE"),
])
def test_bad_input_gets_one_line_and_exit_code_2(tmp_path, demo_set, capsys, case, expected):
    fake = green_folder(tmp_path / "fake")
    os.makedirs(tmp_path / "empty")
    args = {
        "unknown-class": ["--synthetic", f"melanoma={fake}"],
        "empty-folder": ["--synthetic", f"df={tmp_path / 'empty'}"],
        "small-images": ["--synthetic", f"df={green_folder(tmp_path / 'small', size=8)}"],
        "repeats-0": ["--synthetic", f"df={fake}", "--repeats", "0"],
        "no-equals": ["--synthetic", fake],
    }[case]
    assert expected in one_line_error(capsys, argv(tmp_path, demo_set) + args)


def test_bad_input_is_reported_before_weights_and_leaves_no_folder(tmp_path, demo_set, capsys,
                                                                  monkeypatch):
    """The default backbone needs ImageNet weights (none here, and offline); the real error,
    an unknown class, comes first, and no Results/benefit-<name>/ is left behind."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    args = argv(tmp_path, demo_set, "--synthetic", f"melanoma={green_folder(tmp_path / 'g')}")
    args[args.index("--backbone") + 1] = "efficientnetb0"
    args[args.index("--resolution") + 1] = "32"
    with pytest.raises(SystemExit):
        run_cli(classify.main, args)
    captured = capsys.readouterr()
    assert captured.err.strip() == ("error: class 'melanoma' not found in the data; classes "
                                    "present: bkl, df, mel, nv")
    assert "weights" not in captured.out
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_a_run_is_quiet_names_its_device_and_never_retraces(cli_run):
    """TensorFlow's start-up noise is hidden and the test fold is predicted without a new
    tf.function per repeat: 3 arms x 2 repeats would otherwise warn of retracing."""
    proc, _ = cli_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "device: CPU only (no GPU found)" in proc.stdout.splitlines()[0]
    everything = proc.stdout + proc.stderr
    for noise in ("retracing", "cudart_stub", "cuInit", "absl::InitializeLog"):
        assert noise not in everything, noise


@pytest.mark.slow
def test_demo_trains_its_gan_on_the_rare_training_fold_only(tmp_path):
    settings = experiment.Settings(data=None, synthetic_arms={}, name="demo",
                                   results_dir=str(tmp_path / "results"),
                                   models_dir=str(tmp_path / "models"))
    settings.train.resolution = 16
    gan = dict(model="dcgan", resolution=16, steps=2, batch_size=4, channel_scale=0.125)
    filled = demo.prepare_demo(settings, datasets_dir=str(tmp_path / "datasets"), gan=gan,
                               counts=SMALL_COUNTS, log=quiet)
    (rare, run), = filled.synthetic_arms["synthetic"]
    split = split_module.read_split(filled.split_path)
    records = data_loader.list_labelled_images(filled.data)
    expected = {r.image_id for r in records
                if r.class_name == rare and split[r.image_id] == "train"}
    trained = sources.read_trained_images(os.path.join(settings.models_dir, run))
    assert trained == expected
    plan = experiment.prepare(filled, log=quiet)     # passes the leak check, generates
    assert plan.sources["synthetic"][0].provenance == "training fold only"
    assert len(plan.paths["synthetic"][rare]) == plan.additions[rare] > 0


def test_split_only_writes_the_split_and_stops(tmp_path, demo_set):
    split = classify.main(["--data", demo_set, "--split-only", "--name", "s",
                           "--results-dir", str(tmp_path)])
    assert os.path.isfile(tmp_path / "benefit-s" / "split.csv")
    assert set(split.values()) == {"train", "val", "test"}
    assert not os.path.exists(tmp_path / "benefit-s" / "report.json")
