"""train.py and generate.py from the command line, as a user runs them."""
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image
from conftest import ROOT, TF_STARTUP_NOISE



def run(script, *args, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


def dirs(tmp_path):
    return ["--models-dir", tmp_path / "models", "--results-dir", tmp_path / "results",
            "--cache-dir", "none"]


# --eval-images 8: every run scores its generator at its end (the family's eval_every);
# 8 fakes instead of 500 keep that score cheap
TINY = ["--model", "dcgan", "--resolution", 16, "--batch-size", 4, "--channel-scale", 0.125,
        "--sample-every", 2, "--checkpoint-every", 2, "--log-every", 1, "--eval-images", 8]


@pytest.mark.slow
def test_train_then_generate_end_to_end(tmp_path, tiny_images, capsys):
    """train.py and generate.py as a user runs them (fresh interpreters: TensorFlow's
    start-up lines, the device line, the files); the rerun, the second generate and
    evaluate.py run the same scripts' main in this process, which also shows that another
    process (with another start-up) writes the same bytes from the same seeds."""
    import evaluate
    import generate
    import train
    done = run("train.py", "--data", tiny_images, "--steps", 4, "--run", "e2e", *TINY,
               *dirs(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "step 4/4" in done.stdout and "12 images" in done.stdout
    # TensorFlow's start-up lines are gone; our own device line replaces them
    assert "device: CPU only (no GPU found)" in done.stdout  # CUDA_VISIBLE_DEVICES="" here
    assert not [text for text in TF_STARTUP_NOISE if text in done.stderr], done.stderr
    assert f"in {tmp_path / 'models' / 'e2e'} (checkpoints, exports)" in done.stdout
    results = tmp_path / "results" / "e2e"
    assert {"samples_000004.png", "losses.png", "losses.csv"} <= set(os.listdir(results))
    grid = np.asarray(Image.open(results / "samples_000004.png"))
    assert grid.shape == (8 * 18 + 2, 8 * 18 + 2, 3)  # DCGAN: 8 x 8 tiles of 16 px, 2 px gaps

    # rerunning the same command resumes and finds the work done
    capsys.readouterr()
    train.main([str(a) for a in ("--data", tiny_images, "--steps", 4, "--run", "e2e", *TINY,
                                 *dirs(tmp_path))])
    assert "nothing to do" in capsys.readouterr().out

    generate_flags = ["--run", "e2e", "--models-dir", tmp_path / "models", "--n", 5,
                      "--seed", 40, "--batch-size", 2, "--grid"]
    gen = run("generate.py", *generate_flags, "--out", tmp_path / "a")
    assert gen.returncode == 0, gen.stderr
    generate.main([str(a) for a in (*generate_flags, "--out", tmp_path / "b")])
    outs = [tmp_path / "a", tmp_path / "b"]
    files = sorted(os.listdir(outs[0]))
    assert files == [f"seed{s:04d}.png" for s in range(40, 45)] + ["trained_images.txt"]
    assert sorted(os.listdir(outs[1])) == files
    for f in files:  # same seed, identical files
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes()
    # the grid lies beside the folder, where evaluate.py --fake does not read it
    assert (tmp_path / "a_grid.png").read_bytes() == (tmp_path / "b_grid.png").read_bytes()
    # score the run against the real images (a tiny stand-in network: no downloads)
    scores = tmp_path / "scores.json"
    evaluate.main([str(a) for a in ("--real", tiny_images, "--run", "e2e", "--n", 12,
                                    "--models-dir", tmp_path / "models", "--feature-net",
                                    "random-small", "--json", scores)])
    import json
    report = json.loads(scores.read_text())
    assert report["swd"]["average"] > 0 and report["fid"] is not None
    assert 0 <= report["precision"] <= 1 and 0 <= report["recall"] <= 1

    first = np.asarray(Image.open(outs[0] / "seed0040.png"))
    assert first.shape == (16, 16, 3) and first.dtype == np.uint8
    assert not np.array_equal(first, np.asarray(Image.open(outs[0] / "seed0041.png")))


@pytest.mark.parametrize("args, message", [
    (["--data", "/no/such/folder"], "not found: /no/such/folder"),
    (["--steps", "0"], "--steps: must be positive"),
])
def test_train_bad_input_is_one_line_and_exit_2(tmp_path, tiny_images, args, message):
    if args[0] != "--data":
        args = ["--data", tiny_images] + args
    result = run("train.py", *args, *TINY[:2], *dirs(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_generate_bad_input(tmp_path, capsys):
    """The first case as a user meets it (a fresh interpreter; it answers before TensorFlow
    is imported), the two that need TensorFlow through the script's own run_cli(main) here."""
    import generate
    from skingan.errors import run_cli
    (tmp_path / "models" / "unfinished").mkdir(parents=True)
    (tmp_path / "models" / "unfinished" / "config.json").write_text(
        '{"settings": {"model": "dcgan"}}')
    result = run("generate.py", "--run", "nope", "--models-dir", tmp_path / "models")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no run 'nope'" in result.stderr, result.stderr
    cases = [(["--run", "unfinished"], "no exported generator yet"),
             (["--run", "unfinished", "--n", "0"], "--n: must be positive")]
    for args, message in cases:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            run_cli(generate.main, [*args, "--models-dir", str(tmp_path / "models")])
        err = capsys.readouterr().err
        assert info.value.code == 2 and "Traceback" not in err
        assert message in err, err


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_rerun_resumes(tmp_path, tiny_images, capsys):
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--data", tiny_images,
           "--steps", 100000, "--run", "term", *TINY, "--checkpoint-every", 100000,
           "--sample-every", 100000, *dirs(tmp_path)]
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    # a silent hang must fail the test, not block it: kill the run after 240 s
    watchdog = threading.Timer(240, proc.kill)
    watchdog.start()
    reached = False
    for line in proc.stdout:
        if line.startswith("step 3/"):
            reached = True
            break
    watchdog.cancel()
    assert reached and proc.poll() is None, "training never reached step 3"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "checkpoint saved" in out
    ckpts = os.listdir(tmp_path / "models" / "term" / "checkpoints")
    saved = max(int(f.split("-")[1].split(".")[0]) for f in ckpts if f.startswith("ckpt-"))
    assert saved >= 3
    # the rerun in this process (a fresh interpreter's start-up: the end-to-end test above)
    import train
    capsys.readouterr()
    train.main([str(a) for a in ("--data", tiny_images, "--steps", saved + 2, "--run", "term",
                                 *TINY, *dirs(tmp_path))])
    again = capsys.readouterr().out
    assert f"resuming from step {saved}" in again
    assert f"step {saved + 2}/{saved + 2}" in again


def test_help_lists_every_flag_with_defaults():
    result = run("train.py", "--help")
    assert result.returncode == 0
    for flag in ("--data", "--labels", "--class", "--model", "--resolution", "--batch-size",
                 "--steps", "--lr", "--seed", "--run", "--sample-every",
                 "--checkpoint-every", "--xla", "--mixed-precision", "--devices"):
        assert flag in result.stdout
    assert "20000" in result.stdout and "default" in result.stdout


@pytest.mark.parametrize("script", ["train", "generate", "evaluate"])
def test_help_shows_each_default_once(script):
    import importlib
    text = importlib.import_module(script).build_parser().format_help()
    # one block per option: its line and the indented lines after it, up to the next option
    blocks, block = [], []
    for line in text.splitlines():
        if line.startswith("  -") or not line.startswith("    "):
            blocks.append(" ".join(block))
            block = []
        block.append(line.strip())
    blocks.append(" ".join(block))
    for block in blocks:
        if block.startswith("-"):
            assert block.count("default:") <= 1, block


def test_typo_in_data_of_an_existing_run_says_data_path_not_found(tmp_path, tiny_images):
    import train
    from skingan.errors import UserError
    run_dir = tmp_path / "models" / "dcgan-df-16px"          # the run the command names
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(
        '{"settings": {"model": "dcgan", "data": "%s", "class_name": "DF"}}' % tiny_images)
    typo = tiny_images + "x"
    with pytest.raises(UserError, match="data path not found: " + typo):
        train.main(["--data", typo, "--class", "DF", *map(str, TINY[:4] + dirs(tmp_path))])


def test_generate_accepts_a_runs_results_folder(tmp_path):
    from skingan import sampling
    models, results = tmp_path / "SavedModels", tmp_path / "Results"
    (models / "dcgan-df-64px").mkdir(parents=True)
    (models / "dcgan-df-64px" / "config.json").write_text('{"settings": {}}')
    (results / "dcgan-df-64px").mkdir(parents=True)
    for spec in ("dcgan-df-64px", str(results / "dcgan-df-64px"),
                 str(results / "dcgan-df-64px") + os.sep):
        assert sampling.find_run_dir(spec, str(models)) == str(models / "dcgan-df-64px")


def test_classify_fractions_are_strictly_between_0_and_1(capsys):
    import classify
    parser = classify.build_parser()
    assert parser.parse_args(["--test-fraction", "0.2"]).test_fraction == 0.2
    for bad in ("0", "1", "1.5", "x"):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(["--val-fraction", bad])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: argument --val-fraction: ") and len(err.splitlines()) == 1
