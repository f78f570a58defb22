"""evaluate.py end to end, as a user runs it: tiny PNG folders, a subprocess, the JSON file."""
import json
import os
import subprocess
import sys

import pytest
from PIL import Image
from conftest import ROOT, write_pngs





@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("sets")
    real = write_pngs(str(base / "real"), 40, 32, seed=0)
    fake = write_pngs(str(base / "fake"), 40, 32, seed=1)
    return base, real, fake


def run_evaluate(args, home):
    """Run the CLI with HOME and KERAS_HOME pointing at an empty folder: no weights there."""
    env = dict(os.environ, HOME=str(home), KERAS_HOME=str(home / "keras"),
               CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, os.path.join(ROOT, "evaluate.py")] + args,
                          capture_output=True, text=True, env=env, cwd=str(home), timeout=300)


def test_cli_without_weights_reports_swd_and_explains(folders, monkeypatch, capsys):
    # in this interpreter (evaluate.py's main, as the script calls it), with HOME and
    # KERAS_HOME at an empty folder; the test below runs the script in a fresh one
    import evaluate
    from skingan.errors import run_cli
    base, real, fake = folders
    out = base / "no_weights.json"
    monkeypatch.setenv("HOME", str(base))
    monkeypatch.setenv("KERAS_HOME", str(base / "keras"))
    monkeypatch.chdir(base)
    run_cli(evaluate.main, ["--real", real, "--fake", fake, "--json", str(out)])
    said_all = capsys.readouterr()
    result = json.loads(out.read_text())
    assert {"fid", "kid", "swd", "precision", "recall"} <= set(result)
    assert result["fid"] is None and result["kid"] is None and result["recall"] is None
    assert result["swd"]["resolutions"] == [32, 16]
    assert len(result["swd"]["levels"]) == 2 and result["swd"]["average"] > 0
    assert result["skipped"].startswith("FID, KID, precision and recall skipped: no "
                                        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5")
    said = [line for line in (said_all.out + said_all.err).splitlines() if "skipped" in line]
    assert said[0] == result["skipped"] + "; how to get them: evaluate.py --help"
    # one short line (the long help is in --help): under 200 characters besides the folder
    assert len(said[0].replace(str(base / "keras" / "models"), "")) < 200
    assert "SWD average" in said_all.out


@pytest.mark.slow
def test_cli_with_random_small_feature_net(folders):
    base, real, fake = folders
    out = base / "random.json"
    proc = run_evaluate(["--real", real, "--fake", fake, "--feature-net", "random-small",
                         "--resolution", "16", "--json", str(out)], base)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["resolution"] == 16 and result["swd"]["resolutions"] == [16]
    assert result["fid"] > 0
    assert set(result["kid"]) == {"mean", "std"}
    assert 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
    assert "skipped" not in result
    assert "for testing only" in proc.stdout


@pytest.mark.parametrize("args, expected", [
    (["--fake", "{fake}", "--real", "{base}/missing"], "--real: data path not found"),
    (["--real", "{real}", "--fake", "{base}/empty"], "--fake: no images"),
    (["--real", "{real}", "--run", "nope", "--n", "0"], "--n must be positive"),
    (["--real", "{real}", "--run", "nope", "--models-dir", "{base}"], "no run 'nope'"),
    (["--real", "{real}", "--fake", "{fake}", "--resolution", "24"], "power of two"),
])
def test_cli_bad_input_is_one_line_exit_2(folders, args, expected):
    base, real, fake = folders
    os.makedirs(base / "empty", exist_ok=True)
    args = [a.format(base=base, real=real, fake=fake) for a in args]
    proc = run_evaluate(args, base)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("extra", [[], ["--resolution", "16"]])
def test_fake_images_of_mixed_sizes_are_refused_naming_one(folders, tmp_path, extra):
    base, real, _ = folders
    mixed = write_pngs(str(tmp_path / "mixed"), 6, 32, seed=2)
    Image.new("RGB", (274, 274)).save(os.path.join(mixed, "grid.png"))  # sorts first
    proc = run_evaluate(["--real", real, "--fake", mixed] + extra, base)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert os.path.join(mixed, "grid.png") + " is 274x274 px" in errors[0]
    assert "other fake images are 32x32" in errors[0]

