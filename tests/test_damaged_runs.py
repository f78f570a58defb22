"""Run folders damaged from outside the process (issue 16): a truncated or garbled
checkpoint, config.json or export, a full disk, a damaged image cache. Each test damages a
copy of one small trained run (checkpoints at steps 2, 4 and 6, all kept) and checks the
exit code, the one line that explains, the step resumed from, and that intact files are
left as they were."""
import errno
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

import data_loader
import generate
import train
from skingan import checkpoints
from skingan.components import build_for_reading
from skingan.config import LEGACY, resolve_config
from skingan.errors import run_cli
from skingan.loop import train as train_run
from skingan.runs import read_config
from conftest import ROOT, write_blob_images

DATA = "ckpt-{}.data-00000-of-00001"


def quiet(*_args, **_kwargs):
    pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One DCGAN run of 6 steps, checkpoints at 2, 4 and 6 (all kept), trained once."""
    base = tmp_path_factory.mktemp("trained")
    images = write_blob_images(str(base / "images"))
    run, cfg = resolve_config(dict(
        data=images, model="dcgan", resolution=16, batch_size=4, steps=6, channel_scale=0.125,
        sample_every=6, checkpoint_every=2, log_every=6, keep_checkpoints=0, run="r",
        eval_images=8),           # its end-of-run score on 8 fakes rather than 500
        str(base / "models"))
    train_run(cfg, run, str(base / "models"), str(base / "results"), log=quiet,
              handle_signals=False)
    return SimpleNamespace(base=base, images=images)


@pytest.fixture
def run(trained, tmp_path):
    """A fresh copy of the trained run (copytree keeps the files' mtimes)."""
    for part in ("models", "results"):
        shutil.copytree(trained.base / part, tmp_path / part)
    run_dir = tmp_path / "models" / "r"
    return SimpleNamespace(models=tmp_path / "models", results=tmp_path / "results",
                           run_dir=run_dir, ckpts=run_dir / "checkpoints",
                           images=trained.images, original=trained.base / "models" / "r")


def cli(main, args):
    """Run a script's main as its command line does; the exit code (0 when it returns)."""
    try:
        run_cli(main, [str(a) for a in args])
    except SystemExit as stop:
        return stop.code
    return 0


def train_args(run, steps, *extra):
    return ["--data", run.images, "--run", "r", "--steps", steps, "--models-dir", run.models,
            "--results-dir", run.results, "--cache-dir", "none", *extra]


def lines_with(text, output):
    return [line for line in output.splitlines() if text in line]


def snapshot(*folders):
    """{path: (bytes, mtime)} of every file below the folders."""
    found = {}
    for folder in folders:
        for root, _dirs, names in os.walk(folder):
            for name in names:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    found[path] = (f.read(), os.stat(path).st_mtime_ns)
    return found


def truncate(path, fraction=0.5):
    with open(path, "r+b") as f:
        f.truncate(int(os.path.getsize(path) * fraction))


def garble(path, offset=100, length=64):
    """Flip bits in the middle of a file, keeping its size (as a bad copy or sync does)."""
    with open(path, "r+b") as f:
        f.seek(offset)
        chunk = f.read(length)
        f.seek(offset)
        f.write(bytes(b ^ 0x5A for b in chunk))


def listed_checkpoints(ckpts):
    state = tf.train.get_checkpoint_state(str(ckpts))
    return [os.path.basename(p) for p in state.all_model_checkpoint_paths]


# ---------------------------------------------------------------------------------------
# Resume falls back past a damaged newest checkpoint
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", [
    lambda c: truncate(c / DATA.format(6)),
    lambda c: garble(c / "ckpt-6.index", offset=200),
    lambda c: os.remove(c / DATA.format(6)),
], ids=["truncated-data", "garbled-index", "removed-data"])
def test_resume_falls_back_to_the_next_newest_checkpoint(run, capsys, damage):
    damage(run.ckpts)
    damaged = {p: p.read_bytes() for p in run.ckpts.glob("ckpt-6.*")}
    intact = snapshot(*(str(p) for p in run.ckpts.glob("ckpt-[24].*")))
    assert cli(train.main, train_args(run, 8)) == 0
    out = capsys.readouterr().out
    said = lines_with("cannot be restored", out)
    assert len(said) == 1 and f"{run.ckpts / 'ckpt-6'} cannot be restored" in said[0]
    assert "ckpt-6.index.damaged" in said[0]
    assert "resuming from step 4" in out and "step 8/8" in out
    for path, content in damaged.items():  # set aside as they were, never deleted
        assert (path.parent / (path.name + ".damaged")).read_bytes() == content
    assert snapshot(*intact) == intact
    assert listed_checkpoints(run.ckpts) == ["ckpt-2", "ckpt-4", "ckpt-6", "ckpt-8"]


def test_a_partial_restore_is_overwritten_by_the_fallback(run, tmp_path):
    """A failed restore can assign some variables before it fails; the fallback's restore
    must assign every one of them, leaving exactly checkpoint 4."""
    settings = dict(LEGACY, **read_config(str(run.run_dir))["settings"])
    parts = build_for_reading(settings)
    assert checkpoints.try_restore(tf.train.Checkpoint(**checkpoints.saved_items(parts)),
                                   str(run.ckpts / "ckpt-6")) is None
    # ckpt-6 rewritten without the random state: restoring it assigns everything else
    # (step 6 included), then fails its check that every object got a value
    without_rng = {k: v for k, v in checkpoints.saved_items(parts).items() if k != "rng"}
    tf.train.Checkpoint(**without_rng).write(str(run.ckpts / "ckpt-6"))

    fresh = build_for_reading(settings)
    checkpoint = tf.train.Checkpoint(**checkpoints.saved_items(fresh))
    assert checkpoints.try_restore(checkpoint, str(run.ckpts / "ckpt-6")) is not None
    assert int(fresh.step.numpy()) == 6                  # partly restored from ckpt-6
    said = []
    assert checkpoints.restore_newest(checkpoint, str(run.ckpts), said.append) == 4
    assert len(said) == 1 and "ckpt-6 cannot be restored" in said[0]
    checkpoint.write(str(tmp_path / "after"))
    want = tf.train.load_checkpoint(str(run.ckpts / "ckpt-4"))
    got = tf.train.load_checkpoint(str(tmp_path / "after"))
    # everything the components hold (the quality tracker's best score and step are not
    # theirs: there is no tracker here)
    names = [n for n in want.get_variable_to_shape_map() if "OBJECT_GRAPH" not in n
             and n.split("/")[0] not in (checkpoints.BEST_SCORE, checkpoints.BEST_STEP)]
    assert len(names) > 20
    for name in names:
        np.testing.assert_array_equal(got.get_tensor(name), want.get_tensor(name), name)
    # the manager built next sees ckpt-4 as the newest
    assert listed_checkpoints(run.ckpts) == ["ckpt-2", "ckpt-4"]


def test_max_to_keep_still_works_after_a_fallback(run):
    truncate(run.ckpts / DATA.format(6))
    assert cli(train.main, train_args(run, 10, "--keep-checkpoints", 2)) == 0
    names = sorted(os.listdir(run.ckpts))
    assert [n for n in names if not n.endswith(".damaged")] == [
        "checkpoint", DATA.format(10), "ckpt-10.index", DATA.format(8), "ckpt-8.index"]
    assert "ckpt-6.index.damaged" in names  # set aside, not swept away
    assert listed_checkpoints(run.ckpts) == ["ckpt-8", "ckpt-10"]


def test_a_garbled_state_file_still_resumes_from_the_newest(run, capsys):
    (run.ckpts / "checkpoint").write_bytes(b"\xff\xfe garbage \x00")
    assert cli(train.main, train_args(run, 8)) == 0
    assert "resuming from step 6" in capsys.readouterr().out
    assert listed_checkpoints(run.ckpts) == ["ckpt-2", "ckpt-4", "ckpt-6", "ckpt-8"]


def test_when_no_checkpoint_restores_nothing_changes(run, capsys):
    for step in (2, 4, 6):
        truncate(run.ckpts / DATA.format(step))
    before = snapshot(run.models, run.results)
    assert cli(train.main, train_args(run, 8)) == 2
    errors = lines_with("error:", capsys.readouterr().err)
    assert len(errors) == 1
    assert f"no checkpoint in {run.ckpts} can be restored" in errors[0]
    assert "ckpt-6, ckpt-4, ckpt-2" in errors[0] and "nothing was changed" in errors[0]
    assert snapshot(run.models, run.results) == before


# ---------------------------------------------------------------------------------------
# config.json
# ---------------------------------------------------------------------------------------

def test_unreadable_config_uses_its_last_good_copy(run, capsys):
    (run.run_dir / "config.json").write_text('{"run": "r", "settings": {')
    assert cli(train.main, train_args(run, 8)) == 0
    out, err = capsys.readouterr()
    warned = lines_with("warning:", err)
    assert len(warned) == 1 and str(run.run_dir / "config.json") in warned[0]
    assert "is not valid JSON" in warned[0] and "using its last good copy" in warned[0]
    assert "resuming from step 6" in out
    assert read_config(str(run.run_dir))["settings"]["model"] == "dcgan"  # written again


def test_unreadable_config_without_a_copy_is_one_line_and_exit_2(run, capsys):
    (run.run_dir / "config.json").write_text('{"run": "r", "settings": {')
    os.remove(run.run_dir / "config.last-good.json")
    before = snapshot(run.models, run.results)
    assert cli(train.main, train_args(run, 8)) == 2
    errors = lines_with("error:", capsys.readouterr().err)
    assert len(errors) == 1 and str(run.run_dir / "config.json") in errors[0]
    assert "is not valid JSON (Expecting" in errors[0]
    assert snapshot(run.models, run.results) == before


# ---------------------------------------------------------------------------------------
# generator.keras
# ---------------------------------------------------------------------------------------

def generate_args(run, tmp_path):
    return ["--run", "r", "--models-dir", run.models, "--n", 2, "--out", tmp_path / "out"]


def test_a_damaged_export_is_exported_again_from_the_newest_checkpoint(run, tmp_path,
                                                                       capsys):
    import keras
    export = run.run_dir / "generator.keras"
    truncate(export)
    damaged = export.read_bytes()
    intact = snapshot(run.ckpts)
    assert cli(generate.main, generate_args(run, tmp_path)) == 0
    err = capsys.readouterr().err
    said = lines_with("generator.keras", err)
    assert len(said) == 1 and "not found" not in err
    assert f"cannot load generator {export}: the file is damaged (not a complete .keras " \
        "archive" in said[0]
    assert "; exported it again from the run's checkpoint at step 6" in said[0]
    assert sorted(os.listdir(tmp_path / "out")) == ["seed0000.png", "seed0001.png",
                                                    "trained_images.txt"]
    assert (run.run_dir / "generator.keras.damaged").read_bytes() == damaged
    again = keras.models.load_model(export).get_weights()
    original = keras.models.load_model(run.original / "generator.keras").get_weights()
    assert len(again) == len(original)
    for a, b in zip(again, original):
        np.testing.assert_array_equal(a, b)
    assert snapshot(run.ckpts) == intact


def test_a_damaged_export_without_a_restorable_checkpoint_says_damaged(run, tmp_path,
                                                                        capsys):
    truncate(run.run_dir / "generator.keras")
    for step in (2, 4, 6):
        garble(run.ckpts / DATA.format(step), offset=1000)
    before = snapshot(run.models)
    assert cli(generate.main, generate_args(run, tmp_path)) == 2
    err = capsys.readouterr().err
    errors = lines_with("error:", err)
    assert len(errors) == 1 and "not found" not in err
    assert "generator.keras: the file is damaged (not a complete .keras archive" \
        in errors[0]
    assert "no checkpoint that restores" in errors[0] and "--check-run r" in errors[0]
    assert snapshot(run.models) == before


# ---------------------------------------------------------------------------------------
# A full disk
# ---------------------------------------------------------------------------------------

def enospc(path):
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


@pytest.mark.parametrize("kind", ["OSError", "tf"])
def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(run, capsys,
                                                                     monkeypatch, kind):
    def full_disk(self, prefix, options=None):
        # what TensorFlow leaves when the disk fills: a temporary shard folder and part
        # of the data file, then the error
        os.makedirs(prefix + "_temp")
        with open(os.path.join(prefix + "_temp", "part-00000-of-00001.data"), "wb") as f:
            f.write(b"\0" * 1000)
        with open(prefix + ".data-00000-of-00001", "wb") as f:
            f.write(b"\0" * 1000)
        if kind == "tf":  # as SaveV2 reports it on a full file system
            raise tf.errors.ResourceExhaustedError(
                None, None, f"{prefix}_temp/part-00000-of-00001; No space left on device")
        raise enospc(prefix + ".data-00000-of-00001")

    # CheckpointManager.save writes through Checkpoint._write
    monkeypatch.setattr(tf.train.Checkpoint, "_write", full_disk)
    kept = snapshot(run.ckpts, run.run_dir / "generator.keras")
    assert cli(train.main, train_args(run, 8)) == 2
    errors = lines_with("error:", capsys.readouterr().err)
    assert errors == [f"error: disk full while writing checkpoint {run.ckpts / 'ckpt-8'}: "
                      "the last good checkpoint is step 6; free some space and rerun the "
                      "same command to resume"]
    assert snapshot(run.ckpts, run.run_dir / "generator.keras") == kept  # no partial files
    monkeypatch.undo()
    assert checkpoints.restore_newest(
        checkpoints.RunCheckpoint(build_for_reading(
            dict(LEGACY, **read_config(str(run.run_dir))["settings"]))),
        str(run.ckpts), quiet) == 6


def test_disk_full_while_exporting_keeps_the_previous_export(run, capsys, monkeypatch):
    import keras

    def full_disk(self, path, *args, **kwargs):
        with open(path, "wb") as f:   # part of the archive, then the error
            f.write(b"PK\3\4" + b"\0" * 1000)
        raise enospc(path)

    monkeypatch.setattr(keras.Model, "save", full_disk)
    export = run.run_dir / "generator.keras"
    kept = snapshot(export)
    assert cli(train.main, train_args(run, 8)) == 2
    errors = lines_with("error:", capsys.readouterr().err)
    assert errors == [f"error: disk full while writing {export}: the last good checkpoint "
                      "is step 8 (generator.keras is still the export of step 6); free "
                      "some space and rerun the same command to resume"]
    assert snapshot(export) == kept
    assert not [n for n in os.listdir(run.run_dir) if ".tmp-" in n]
    monkeypatch.undo()
    keras.models.load_model(export)


# ---------------------------------------------------------------------------------------
# The decoded-image cache
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", [truncate, garble], ids=["truncated", "garbled"])
def test_a_damaged_cache_file_is_rebuilt_not_trained_on(trained, tmp_path, damage):
    cache = tmp_path / "cache"
    first, _ = data_loader.load_data(trained.images, resolution=16, cache_dir=cache,
                                     log=quiet)
    first = np.array(first)
    (npy,) = cache.glob("*.npy")
    damage(npy)
    said = []
    again, _ = data_loader.load_data(trained.images, resolution=16, cache_dir=cache,
                                     log=said.append)
    rebuilt = lines_with("rebuilding it from the images", "\n".join(said))
    assert len(rebuilt) == 1 and str(npy) in rebuilt[0]
    assert ("truncated" if damage is truncate else "checksum differs") in rebuilt[0]
    np.testing.assert_array_equal(np.array(again), first)
    said.clear()
    data_loader.load_data(trained.images, resolution=16, cache_dir=cache, log=said.append)
    assert any(line.startswith("loaded 12 cached") for line in said)


# ---------------------------------------------------------------------------------------
# train.py --check-run
# ---------------------------------------------------------------------------------------

def test_check_run_says_ok_for_every_file_of_an_intact_run(run, capsys):
    files = sorted(str(p.relative_to(run.run_dir)) for p in run.run_dir.rglob("*")
                   if p.is_file())
    assert cli(train.main, ["--check-run", "r", "--models-dir", run.models,
                            "--results-dir", run.results]) == 0
    out = [line for line in capsys.readouterr().out.splitlines()
           if not line.startswith("device:")]              # the start-up banner
    # the run scored itself at its end (on by default), so Results/ holds metrics.csv too
    logs = ["results/r/losses.csv", "results/r/metrics.csv"]
    assert [line.split()[1].rstrip(":") for line in out[:-1]] == files + logs
    assert all(line.startswith("ok ") for line in out[:-1])
    assert out[-3] == "ok       results/r/losses.csv: 6 rows, steps 1-6"
    assert out[-1] == f"run 'r': all {len(files) + 2} files ok"


@pytest.mark.slow
def test_check_run_names_each_damaged_file(run):
    """End to end, as a user runs it before copying a run."""
    truncate(run.ckpts / DATA.format(4))
    truncate(run.run_dir / "generator.keras")
    (run.run_dir / "config.json").write_text("{")
    before = snapshot(run.models)
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "train.py"), "--check-run", "r", "--models-dir",
         str(run.models)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = {line.split()[1].rstrip(":"): line for line in done.stdout.splitlines()}
    for name in (DATA.format(4), "ckpt-4.index"):
        assert lines[f"checkpoints/{name}"].startswith("DAMAGED")
        assert "does not restore" in lines[f"checkpoints/{name}"]
    assert "the file is damaged (not a complete .keras archive" in lines["generator.keras"]
    assert lines["config.json"].startswith("DAMAGED") and "not valid JSON" in \
        lines["config.json"]
    ok = [name for name, line in lines.items() if line.startswith("ok ")]
    # generator_best.keras: the run scored its quality at its end (on by default)
    assert sorted(ok) == sorted(["checkpoints/checkpoint", "config.last-good.json",
                                 "trained_images.txt", "generator_best.keras"] + [
        f"checkpoints/{n}" for s in (2, 6) for n in (DATA.format(s), f"ckpt-{s}.index")])
    assert len(lines_with("error: run 'r': 4 of 12 files are damaged", done.stderr)) == 1
    assert snapshot(run.models) == before


def check_run_lines(run, capsys):
    code = cli(train.main, ["--check-run", "r", "--models-dir", run.models,
                            "--results-dir", run.results])
    captured = capsys.readouterr()
    return code, {line.split()[1].rstrip(":"): line for line in captured.out.splitlines()
                  if not line.startswith(("device:", "run "))}, captured.err


def test_check_run_finds_a_torn_row_in_the_results_logs(run, capsys):
    """A full disk while appending leaves half a row; the resume drops it (issue 23)."""
    losses = run.results / "r" / "losses.csv"
    losses.write_text(losses.read_text() + "7,0.12")
    (run.results / "r" / "metrics.csv").write_text("step,swd,fid\n2,50.1,\n4,48,,\n")
    code, lines, err = check_run_lines(run, capsys)
    assert code == 2 and "2 of 14 files are damaged" in err
    assert lines["results/r/losses.csv"].startswith("DAMAGED")
    assert "torn row at line 8: a last line without its newline" in lines["results/r/losses.csv"]
    assert "line 3: 4 fields, the header has 3" in lines["results/r/metrics.csv"]


def test_check_run_finds_a_header_the_run_does_not_write(run, capsys):
    losses = run.results / "r" / "losses.csv"
    losses.write_text(losses.read_text().replace("step,d_loss,g_loss", "step,d_loss,r1"))
    code, lines, _ = check_run_lines(run, capsys)
    assert code == 2
    line = lines["results/r/losses.csv"]
    assert line.startswith("DAMAGED") and "header 'step,d_loss,r1,acc_real" in line
    assert "is not the run's 'step,d_loss,g_loss,acc_real" in line


def test_check_run_notes_log_rows_after_the_newest_checkpoint(run, capsys):
    losses = run.results / "r" / "losses.csv"
    last = losses.read_text().splitlines()[-1].split(",", 1)[1]
    with open(losses, "a") as f:                # as if killed at step 8, before its checkpoint
        f.write(f"7,{last}\n8,{last}\n")
    code, lines, _ = check_run_lines(run, capsys)
    assert code == 0
    assert lines["results/r/losses.csv"] == (
        "note     results/r/losses.csv: 2 rows after step 6, the newest checkpoint (steps "
        "7-8): the next resume drops them and trains those steps again")


def test_a_resume_after_a_torn_log_row_continues_a_log_that_parses(run, capsys):
    losses = run.results / "r" / "losses.csv"
    losses.write_text(losses.read_text() + "7,0.1")        # the disk filled mid-row
    assert cli(train.main, train_args(run, 8)) == 0
    rows = np.loadtxt(losses, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(rows[:, 0], np.arange(1, 9))
    code, lines, _ = check_run_lines(run, capsys)
    assert code == 0 and lines["results/r/losses.csv"].startswith("ok ")
