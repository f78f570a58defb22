"""The best-scoring checkpoint: kept besides the newest ones (rotation never deletes it, a
newer best makes it ordinary), kept across a resume, and generated from by
generate.py --best exactly as by --step <its step>."""
import math
import os

import numpy as np
import pytest
from PIL import Image

import generate
from conftest import quiet
from skingan import checkpoints
from skingan.config import resolve_config
from skingan.errors import run_cli
from skingan.loop import train as train_run
from skingan.quality import QualityTracker


def listed(folder):
    return sorted(checkpoints.kept_checkpoints(str(folder)))


def fake_checkpoint(folder, step):
    for suffix in (".index", ".data-00000-of-00001"):
        (folder / f"ckpt-{step}{suffix}").write_bytes(b"x")


def test_rotation_keeps_the_newest_and_the_best(tmp_path):
    for step in (2, 4, 6, 8):
        fake_checkpoint(tmp_path, step)
    checkpoints.rotate(str(tmp_path), keep=2, best_step=2)
    assert listed(tmp_path) == [2, 6, 8]
    state = checkpoints.read_state(str(tmp_path))        # the manager's list agrees
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == \
        ["ckpt-2", "ckpt-6", "ckpt-8"]
    assert os.path.basename(state.model_checkpoint_path) == "ckpt-8"
    fake_checkpoint(tmp_path, 10)
    checkpoints.rotate(str(tmp_path), keep=2, best_step=10)   # a new best: 2 is ordinary
    assert listed(tmp_path) == [8, 10]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint"] + [
        f"ckpt-{s}{x}" for s in (10, 8) for x in (".data-00000-of-00001", ".index")]
    checkpoints.rotate(str(tmp_path), keep=0, best_step=None)  # --keep-checkpoints all
    assert listed(tmp_path) == [8, 10]


def only(rule):
    """A stand-in for QualityTracker.is_new_best, so the test decides which step is best."""
    return lambda self, scores: rule(self)


def pngs(folder):
    names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    return names, [np.asarray(Image.open(os.path.join(folder, n))) for n in names]


def test_best_checkpoint_survives_rotation_and_resume_and_generate_best_uses_it(
        tmp_path, tiny_images, monkeypatch, capsys):
    models, results = tmp_path / "models", tmp_path / "results"
    ckpts = models / "r" / "checkpoints"

    def train(steps):
        run, cfg = resolve_config(dict(
            data=tiny_images, model="dcgan", resolution=16, batch_size=4, steps=steps,
            channel_scale=0.125, sample_every=100, checkpoint_every=2, log_every=2,
            eval_every=2, eval_images=8, keep_checkpoints=2, ema=0.5, run="r"), str(models))
        train_run(cfg, run, str(models), str(results), log=quiet, handle_signals=False)

    # only the first score counts as best: step 2
    monkeypatch.setattr(QualityTracker, "is_new_best",
                        only(lambda tracker: math.isinf(float(tracker.best.numpy()))))
    train(8)
    assert listed(ckpts) == [2, 6, 8]                 # the newest 2, and the best besides
    assert checkpoints.read_best_step(str(ckpts)) == 2

    # --best writes exactly the images --step 2 writes (the EMA generator of step 2)
    common = ["--run", "r", "--models-dir", str(models), "--n", "3"]
    generate.main(common + ["--best", "--out", str(tmp_path / "best")])
    generate.main(common + ["--step", "2", "--out", str(tmp_path / "step2")])
    generate.main(common + ["--out", str(tmp_path / "latest")])
    best, step2, latest = (pngs(tmp_path / d) for d in ("best", "step2", "latest"))
    assert best[0] == step2[0] == ["seed0000.png", "seed0001.png", "seed0002.png"]
    for a, b in zip(best[1], step2[1]):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(best[1], latest[1]))
    assert "the best checkpoint: step 2" in capsys.readouterr().err

    # a resumed run keeps which step is best, and keeps its checkpoint
    train(12)
    assert listed(ckpts) == [2, 10, 12]
    assert checkpoints.read_best_step(str(ckpts)) == 2

    # a newer best: the old one becomes ordinary and rotates away
    monkeypatch.setattr(QualityTracker, "is_new_best", only(lambda tracker: True))
    train(14)
    assert listed(ckpts) == [12, 14]
    assert checkpoints.read_best_step(str(ckpts)) == 14


def test_best_without_a_score_is_one_line_and_exit_2(tmp_path, tiny_images, capsys):
    models, results = tmp_path / "models", tmp_path / "results"
    run, cfg = resolve_config(dict(
        data=tiny_images, model="dcgan", resolution=16, batch_size=4, steps=2,
        channel_scale=0.125, sample_every=2, checkpoint_every=2, eval_every=0, run="r"),
        str(models))
    train_run(cfg, run, str(models), str(results), log=quiet, handle_signals=False)
    capsys.readouterr()
    for extra in ([], ["--step", "2"]):
        with pytest.raises(SystemExit) as exit_:
            run_cli(generate.main, ["--run", "r", "--models-dir", str(models), "--best",
                                    "--out", str(tmp_path / "out"), *extra])
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err, err
    assert not os.path.exists(tmp_path / "out")
