"""The loop's schedule and the settings a resumed run must keep: quality scores on their
own schedule, Keras 2 time decay, refusals, signals."""
import signal

import numpy as np
import pytest
import tensorflow as tf

import train
from conftest import quiet, write_blob_images
from skingan.components import make_optimizer
from skingan.config import new_run_settings, resolve_config
from skingan.errors import UserError
from skingan.loop import StopRequest
from skingan.loop import train as train_run


def tiny(data, **overrides):
    # eval_images 8: a run scores its generator at its end (dcgan's eval_every), on 8 fakes
    explicit = dict(data=data, model="dcgan", resolution=16, batch_size=4, steps=4,
                    channel_scale=0.125, sample_every=4, checkpoint_every=4, log_every=1,
                    eval_images=8)
    explicit.update(overrides)
    return explicit


def test_quality_is_scored_on_its_own_schedule(tmp_path, tiny_images):
    # --eval-every 3 with --log-every 2: scores at 3 and 6 (step 3 is no log, sample or
    # checkpoint step, which the old loop skipped), and none at 2 or 4
    models, results = tmp_path / "models", tmp_path / "results"
    run, cfg = resolve_config(tiny(tiny_images, steps=6, log_every=2, eval_every=3,
                                   eval_images=8), str(models))
    train_run(cfg, run, str(models), str(results), log=quiet, handle_signals=False)
    rows = np.genfromtxt(results / run / "metrics.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(np.atleast_1d(rows["step"]), [3, 6])


def test_keras2_time_decay_of_the_learning_rate():
    # Adam's first steps on a constant gradient move a weight by lr_t each (m_hat / sqrt(v_hat)
    # = 1), so the moves are the learning rates: lr / (1 + decay * t) for t = 0, 1, 2.
    cfg = new_run_settings(dict(model="sl-stylegan", data="unused", lr=0.1, lr_decay=0.5,
                                adam_epsilon=1e-12))
    optimizer = make_optimizer(cfg)
    w = tf.Variable(0.0)
    optimizer.build([w])
    moves = []
    for _ in range(3):
        before = float(w.numpy())
        optimizer.apply_gradients([(tf.constant(1.0), w)])
        moves.append(before - float(w.numpy()))
    np.testing.assert_allclose(moves, [0.1, 0.1 / 1.5, 0.1 / 2.0], rtol=1e-5)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One run trained for one step, shared: the refusals below need only its config.json
    (written by training as a resumed run reads it), so one training run serves them all."""
    root = tmp_path_factory.mktemp("trained")
    data = write_blob_images(str(root / "images"))
    models, results = root / "models", root / "results"
    run, cfg = resolve_config(tiny(data, steps=1, run="r"), str(models))
    train_run(cfg, run, str(models), str(results), log=quiet, handle_signals=False)
    return data, models


@pytest.mark.parametrize("flag, value", [
    ("batch_size", 2), ("lr", 1e-3), ("seed", 1), ("augment", "color"), ("ema", 0.9),
    ("adam_epsilon", 1e-7), ("hflip", True)])
def test_resume_with_another_experiment_setting_is_refused(trained_run, flag, value):
    data, models = trained_run
    option = "--" + flag.replace("_", "-")
    with pytest.raises(UserError, match=f"{option} was .*, now {value!r}"):
        resolve_config(tiny(data, steps=2, run="r", **{flag: value}), str(models))
    # how long and how it runs may change
    _, again = resolve_config(tiny(data, steps=9, run="r", log_every=3), str(models))
    assert again["steps"] == 9 and again["log_every"] == 3


def test_a_second_ctrl_c_aborts_at_once(monkeypatch, capsys):
    stop = StopRequest()
    stop._handle(signal.SIGINT, None)              # first: ask the loop to save and stop
    assert stop.signal == signal.SIGINT
    with pytest.raises(KeyboardInterrupt):         # second: abort without saving
        stop._handle(signal.SIGINT, None)

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("skingan.loop.train", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--steps", "1"])
    assert exit_info.value.code == 130
    assert "interrupted; nothing saved since the last checkpoint" in capsys.readouterr().err


def test_bad_flags_are_refused_while_parsing(capsys):
    for argv, message in [(["--keep-checkpoints", "-1"], "must be 0 or positive"),
                          (["--ema", "1.5"], "must be in [0, 1)"),
                          (["--lr", "0"], "must be positive"),
                          (["--resolution", "48"], "power of two")]:
        with pytest.raises((SystemExit, UserError)) as info:
            train.main(argv)
        text = capsys.readouterr().err + (str(info.value) if info.type is UserError else "")
        assert message in text, argv


# The papers' settings as DESIGN.md states them (SL-StyleGAN: Qin et al. 2020, Keras' Adam
# epsilon 1e-7; DCGAN: Bhavsar et al. 2021's config.py, PyTorch's Adam epsilon 1e-8), and
# the demo presets the README documents.
PAPER_DEFAULTS_HELP = [
    "sl-stylegan: 256 px, batch 16, 20000 iterations, Adam 0.0001 (0, 0.99, eps 1e-07), "
    "time decay 1e-05, crop 'resize', random horizontal flips, samples every 500, "
    "checkpoints every 500.",
    "dcgan: 64 px, batch 257, 2000 epochs (last partial batch kept), Adam 0.0002 "
    "(0.5, 0.999, eps 1e-08), crop 'center', no flips, samples every 50, "
    "checkpoints every 50.",
]
DEMO_PRESETS = ["sl-stylegan 32 px, 500 iterations", "dcgan 32 px, 300 iterations"]


def test_readme_and_help_state_the_paper_defaults():
    import os

    from conftest import ROOT
    from skingan.config import defaults_table
    with open(os.path.join(ROOT, "README.md")) as f:
        assert defaults_table() in f.read()
    lines = [" ".join(line.split()) for line in train.build_parser().format_help().splitlines()]
    for expected in PAPER_DEFAULTS_HELP:
        assert expected in lines, expected
    demo = next(line for line in lines if line.startswith("Without --data"))
    for preset in DEMO_PRESETS:
        assert preset in demo
