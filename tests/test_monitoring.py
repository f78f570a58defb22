"""Health warnings, the loss log's resume behaviour and the NaN scan."""
import math
import os

import numpy as np
import pytest
from PIL import Image

from skingan.monitoring import HealthMonitor, TrainingLog, first_non_finite


def metrics(acc_real, acc_fake):
    return {"acc_real": acc_real, "acc_fake": acc_fake, "d_loss": 0.01}


def test_d_has_won_warns_once_after_a_sustained_stretch():
    health = HealthMonitor(window=5)
    warnings = [health.update(s, metrics(1.0, 1.0)) for s in range(1, 12)]
    assert [w is not None for w in warnings] == [False] * 4 + [True] + [False] * 6
    assert "discriminator has won for 5 steps" in warnings[4]
    # one balanced step ends the episode; a new stretch warns again
    assert health.update(12, metrics(0.6, 0.5)) is None
    again = [health.update(s, metrics(1.0, 0.995)) for s in range(13, 18)]
    assert again[-1] is not None and all(w is None for w in again[:-1])


def test_no_warning_while_d_is_merely_good():
    health = HealthMonitor(window=5)
    assert all(health.update(s, metrics(0.98, 1.0)) is None for s in range(50))


def test_collapse_warning_compares_sample_spread_with_real_images():
    rs = np.random.RandomState(0)
    real = rs.randint(0, 256, (32, 8, 8, 3)).astype(np.uint8)
    health = HealthMonitor(warmup_steps=10)
    real_div = HealthMonitor.diversity(real)
    collapsed = np.repeat(real[:1], 32, axis=0)
    collapsed[1:, 0, 0, 0] ^= 1  # all but identical
    assert HealthMonitor.diversity(collapsed) < 0.05 * real_div
    assert health.check_samples(5, collapsed, real_div) is None  # still warming up
    warning = health.check_samples(20, collapsed, real_div)
    assert warning is not None and "lost their diversity" in warning
    assert health.check_samples(30, collapsed, real_div) is None  # once per episode
    assert health.check_samples(40, real, real_div) is None


def blocky(rs, n, base):
    """n images of 8 x 8 random colour blocks (4 px each, 32 px) around colour `base`:
    varied images, as far apart as their random blocks."""
    blocks = np.clip(np.asarray(base) + rs.randint(-60, 61, (n, 8, 8, 3)), 0, 255)
    return np.repeat(np.repeat(blocks, 4, axis=1), 4, axis=2).astype(np.uint8)


BASES = [(120, 80, 60), (70, 50, 45), (160, 125, 95), (135, 105, 85)]   # four classes
NAMES = ["nv", "mel", "bkl", "df"]


def conditional_grid(rs, collapsed=()):
    """A 4-class grid, one row of 8 per class (labels 0 .. 0, 1 .. 1, ...): varied rows,
    except the classes in `collapsed`, whose row is one image repeated."""
    rows = []
    for c, base in enumerate(BASES):
        row = blocky(rs, 8, base)
        rows.append(np.repeat(row[:1], 8, axis=0) if c in collapsed else row)
    return np.concatenate(rows), np.repeat(np.arange(4, dtype=np.int32), 8)


def real_sets(rs):
    """64 varied real images per class: (images by class, their diversity by class)."""
    images = {c: blocky(rs, 64, base) for c, base in enumerate(BASES)}
    return images, {c: HealthMonitor.diversity(x) for c, x in images.items()}


def test_a_conditional_grid_is_judged_class_by_class():
    rs = np.random.RandomState(1)
    _, real = real_sets(rs)
    fakes, labels = conditional_grid(rs, collapsed={3})       # df: one image, 8 times
    ratios = HealthMonitor().ratios(fakes, real, labels)
    assert ratios[3] < 0.01 and min(ratios[c] for c in (0, 1, 2)) > 0.7   # 0 up to rounding
    warning = HealthMonitor(warmup_steps=0).check_samples(300, fakes, real, labels, NAMES)
    assert warning.startswith("WARNING step 300: the samples of class df have lost")
    assert "nv" not in warning and "mel" not in warning and "bkl" not in warning
    fakes, labels = conditional_grid(rs)                      # every row varied
    assert HealthMonitor(warmup_steps=0).check_samples(300, fakes, real, labels, NAMES) is None


def test_rows_that_each_repeat_one_lesion_warn_though_the_pooled_grid_is_varied():
    """DCGAN's conditional demo at 300 iterations: one lesion per class, the four rows
    different from one another. Pooled, the grid looks varied; per class, all collapsed."""
    rs = np.random.RandomState(2)
    images, real = real_sets(rs)
    fakes, labels = conditional_grid(rs, collapsed={0, 1, 2, 3})
    # pooled, as the check judged a conditional grid before: no warning
    pooled_real = HealthMonitor.diversity(np.concatenate(list(images.values())))
    assert HealthMonitor(warmup_steps=0).check_samples(300, fakes, pooled_real) is None
    warning = HealthMonitor(warmup_steps=0).check_samples(300, fakes, real, labels, NAMES)
    assert "classes nv, mel, bkl, df have lost their diversity" in warning
    assert warning.count("0%") == 4


def test_each_class_warns_once_per_episode():
    rs = np.random.RandomState(3)
    _, real = real_sets(rs)
    health = HealthMonitor(warmup_steps=100)

    def check(step, collapsed, monitor=health, names=NAMES):
        fakes, labels = conditional_grid(rs, collapsed)
        return monitor.check_samples(step, fakes, real, labels, names)
    assert check(50, {1}) is None                                  # warming up
    assert "samples of class mel have" in check(200, {1})
    assert check(250, {1}) is None                                 # the same episode
    # a second class collapses while mel still is: only the new one is named
    warning = check(300, {1, 2})
    assert "class bkl have" in warning and "mel" not in warning
    assert check(350, ()) is None                                  # both recovered
    assert "class mel have" in check(400, {1})                     # a new episode
    # without class names, the labels
    assert "class 2 have" in check(0, {2}, HealthMonitor(warmup_steps=0), None)


DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def tiles(name, side=32):
    """The 32 px images of a mosaic in tests/data, row by row."""
    mosaic = np.asarray(Image.open(os.path.join(DATA, name)))
    rows, cols = mosaic.shape[0] // side, mosaic.shape[1] // side
    return mosaic.reshape(rows, side, cols, side, 3).transpose(0, 2, 1, 3, 4).reshape(
        rows * cols, side, side, 3)


@pytest.fixture(scope="module")
def demo_reals():
    from skingan.demo_data import demo_image
    return np.stack([demo_image(i, size=32) for i in range(64)])


def test_collapse_warning_on_real_runs(demo_reals):
    """The two real cases: 32 samples of the demo's SL-StyleGAN run at 1,000 iterations
    (the same brown oval on pink in every tile) and of the demo's DCGAN run at 300
    iterations (varied), from `python train.py --steps 1000` and
    `python train.py --model dcgan` at seed 0 (generate.py --seed 0 --n 32)."""
    real_div = HealthMonitor.diversity(demo_reals)
    collapsed = tiles("collapsed_sl-stylegan_demo_step1000.png")
    varied = tiles("varied_dcgan_demo_step300.png")
    assert HealthMonitor.diversity(collapsed) / real_div < 0.4
    assert HealthMonitor.diversity(varied) / real_div > 0.7
    assert "lost their diversity" in HealthMonitor().check_samples(1000, collapsed, real_div)
    assert HealthMonitor().check_samples(300, varied, real_div) is None


def test_collapse_warning_on_one_oval_with_noise(demo_reals):
    rs = np.random.RandomState(0)
    yy, xx = np.mgrid[:32, :32]
    oval = ((yy - 16) / 9.0) ** 2 + ((xx - 15) / 12.0) ** 2 < 1
    image = np.where(oval[..., None], [120, 70, 50], [230, 170, 160]).astype(np.float32)
    same = np.clip(image + rs.normal(0, 12, (32, 32, 32, 3)), 0, 255).astype(np.uint8)
    real_div = HealthMonitor.diversity(demo_reals)
    assert HealthMonitor.diversity(same) < 0.2 * real_div
    assert HealthMonitor().check_samples(500, same, real_div) is not None
    assert HealthMonitor().check_samples(500, demo_reals[32:], real_div) is None


def test_first_non_finite_finds_the_earliest_bad_value():
    rows = [(1, {"d": 1.0, "g": 2.0}), (2, {"d": math.inf, "g": 1.0}),
            (3, {"d": math.nan, "g": 1.0})]
    assert first_non_finite(rows) == (2, "d", math.inf)
    assert first_non_finite(rows[:1]) is None


def test_loss_log_drops_rows_after_the_resumed_step(tmp_path):
    log = TrainingLog(str(tmp_path), ["d_loss", "g_loss"])
    for step in range(1, 6):
        log.add(step, {"d_loss": float(step), "g_loss": 0.5})
    log.plot("t")
    log.close()
    assert (tmp_path / "losses.png").is_file()
    log = TrainingLog(str(tmp_path), ["d_loss", "g_loss"], resume_step=3)
    log.add(4, {"d_loss": 40.0, "g_loss": 0.5})
    log.close()
    rows = np.loadtxt(tmp_path / "losses.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(rows[:, 0], [1, 2, 3, 4])
    assert rows[-1, 1] == 40.0


def test_tensorboard_scalars_hold_every_step_of_a_batch_of_rows(tmp_path):
    import glob

    import tensorflow as tf
    log = TrainingLog(str(tmp_path), ["d_loss", "g_loss"])
    log.add_rows([(step, {"d_loss": step / 10, "g_loss": -step}) for step in (1, 2, 3)])
    log.add(4, {"d_loss": 0.4, "g_loss": -4.0})
    log.close()
    seen, plugins = {}, {}
    for path in glob.glob(str(tmp_path / "tensorboard" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                seen[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
                if value.metadata.plugin_data.plugin_name:  # written with each tag's first
                    plugins[value.tag] = value.metadata.plugin_data.plugin_name
    expected = {("d_loss", s): s / 10 for s in (1, 2, 3, 4)}
    expected.update({("g_loss", s): -float(s) for s in (1, 2, 3, 4)})
    assert seen.keys() == expected.keys()
    assert plugins == {"d_loss": "scalars", "g_loss": "scalars"}  # TensorBoard plots them
    for key, value in expected.items():
        assert seen[key] == pytest.approx(value, rel=1e-6)
    rows = np.loadtxt(tmp_path / "losses.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(rows, [[1, 0.1, -1], [2, 0.2, -2], [3, 0.3, -3], [4, 0.4, -4]])
