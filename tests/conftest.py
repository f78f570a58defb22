import os

# Quiet TensorFlow's C++ logging and keep tests on the CPU before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Tests never download: pretrained weights come only from Keras' cache (skingan.pretrained),
# for every test and every subprocess a test starts.
os.environ["SKINGAN_OFFLINE"] = "1"
# Under pytest-xdist (`-n 2`) each worker is a TensorFlow process of its own, and each would
# start a thread pool per core for the ops inside one op (intra-op): two workers on two cores
# would then run 4 such threads. One intra-op thread per worker (the tiny test networks gain
# little from more); inter-op stays at TensorFlow's default, which the multi-device tests'
# collectives need. Set TF_NUM_INTRAOP_THREADS=0 to keep TensorFlow's own choice.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The costliest modules first (their times in docs/bench-tests.md), the rest in file order:
# `-n 2 --dist loadfile` hands whole modules to the two workers in this order, and a long
# module handed out last would leave one worker running it alone at the end.
LONGEST_FIRST = ("test_training", "test_stylegan2_runs", "test_stylegan2_training",
                 "test_ada_training", "test_multiworker", "test_cli", "test_mirrored",
                 "test_damaged_runs", "test_conditional_training", "test_dcgan_recipe",
                 "test_classify_cli", "test_sl_stylegan", "test_readme")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)                   # a stable sort: file order within each rank

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


# What TensorFlow 2.21 prints on stderr while it is imported and looks for a GPU on a CPU
# machine (captured from `python -c "import tensorflow"` and a device query), written out
# here rather than taken from skingan.quiet_tf.HARMLESS: a line the filter stopped dropping
# shows up as a failure.
TF_STARTUP_NOISE = ("All log messages before absl::InitializeLog() is called",
                    "oneDNN custom operations are on",
                    "Could not find cuda drivers on your machine",
                    "This TensorFlow binary is optimized to use available CPU instructions",
                    "To enable the following instructions:",
                    "failed call to cuInit")


def quiet(*_args, **_kwargs):
    """A log function that prints nothing."""


def write_image(path, color=(200, 120, 90), size=(12, 10), fmt=None):
    """One flat-coloured RGB image of `size` (W, H) at `path`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return str(path)


def write_pngs(folder, n, size, seed):
    """n PNGs of random rectangles on a dark background."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        img = np.zeros((size, size, 3), np.uint8) + rng.integers(0, 60, 3).astype(np.uint8)
        y, x = rng.integers(0, size - 8, 2)
        img[y:y + 8, x:x + 8] = rng.integers(120, 256, 3)
        Image.fromarray(img).save(os.path.join(folder, f"img{i:03d}.png"))
    return folder


def write_blob_images(folder, n=12, size=24, seed=0):
    """n small RGB PNGs: a dark ellipse on a skin-toned background, each a little different."""
    os.makedirs(folder, exist_ok=True)
    rs = np.random.RandomState(seed)
    yy, xx = np.mgrid[:size, :size] / size
    for i in range(n):
        cy, cx, r = rs.uniform(0.35, 0.65), rs.uniform(0.35, 0.65), rs.uniform(0.15, 0.3)
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2) < r ** 2
        img = np.empty((size, size, 3), np.float32)
        img[:] = np.array([220, 170, 140]) + rs.normal(0, 8, 3)
        img[mask] = np.array([90, 55, 40]) + rs.normal(0, 8, 3)
        img += rs.normal(0, 4, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            os.path.join(folder, f"img_{i:03d}.png"))
    return folder


@pytest.fixture
def tiny_images(tmp_path):
    return write_blob_images(str(tmp_path / "images"))


@pytest.fixture
def mixed_bfloat16():
    """Build models under a bfloat16 policy; restore float32 afterwards."""
    import keras
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


# A small multi-class demo set (rare class df) for the classifier experiment's tests.
SMALL_COUNTS = {"nv": 30, "mel": 24, "bkl": 24, "df": 18}


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory):
    from skingan import demo_data
    root = tmp_path_factory.mktemp("data") / "demo-classes"
    return demo_data.ensure_multiclass_demo_data(str(root), counts=SMALL_COUNTS, size=24,
                                                 log=quiet)


# Two logical CPU devices (for tf.distribute.MirroredStrategy) must be set before TensorFlow
# starts, so such tests run a script in a fresh interpreter, after this prelude.
TWO_CPUS = r"""
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
tf.config.experimental.enable_op_determinism()
"""


def run_on_two_cpus(script, *args, timeout=600):
    """Run TWO_CPUS + script with args in a fresh interpreter; the script prints one line
    'REPORT' + JSON, returned decoded."""
    result = subprocess.run([sys.executable, "-c", TWO_CPUS + script, *map(str, args)],
                            cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    return json.loads(lines[0][len("REPORT"):])
