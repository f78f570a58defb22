"""metrics.py on small arrays: FID/KID/precision-recall maths, SWD behaviour, features.

No Inception weights are used or downloaded: features come from a tiny random conv net or
from synthetic Gaussian activations.
"""
import numpy as np
import pytest
import scipy.linalg

from skingan import metrics


def shape_images(n, size=32, seed=0):
    """uint8 (n, size, size, 3): dark random backgrounds with three bright discs or squares."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        img = np.ones((size, size, 3)) * rng.uniform(0, 80, 3)
        for _ in range(3):
            cy, cx = rng.uniform(0, size, 2)
            r = rng.uniform(3, 9)
            if rng.random() < 0.5:
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            else:
                mask = (abs(yy - cy) < r) & (abs(xx - cx) < r)
            img[mask] = rng.uniform(100, 255, 3)
        out[i] = img
    return out


def box_blur(images, size=5):
    """Mean over a size x size window (edges clamped), per channel."""
    from scipy.ndimage import uniform_filter
    return uniform_filter(images.astype(np.float32), size=(1, size, size, 1)).astype(np.uint8)


@pytest.fixture(scope="module")
def images():
    return shape_images(288)


@pytest.fixture(scope="module")
def net():
    return metrics.random_feature_net(input_size=32)


# ---------------------------------------------------------------- FID

def scipy_fid(a, b):
    """Independent reference: |mu_a - mu_b|^2 + Tr(Ca + Cb - 2 sqrtm(Ca Cb))."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(ca @ cb).real
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(ca + cb - 2 * root))


def test_fid_matches_scipy_and_is_zero_for_identical_sets():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 12))
    mix = rng.normal(size=(12, 12)) * 0.3 + np.eye(12)
    b = rng.normal(size=(250, 12)) @ mix + 0.4
    fid = metrics.fid_from_features(a, b)
    assert fid == pytest.approx(scipy_fid(a, b), rel=1e-6)
    assert fid > 1.0
    assert abs(metrics.fid_from_features(a, a)) < 1e-6 * np.trace(np.cov(a, rowvar=False))


def test_fid_rejects_bad_shapes():
    with pytest.raises(ValueError):
        metrics.fid_from_features(np.zeros((10, 3)), np.zeros((10, 4)))


# ---------------------------------------------------------------- KID

def test_kid_zero_for_identical_sets_and_grows_with_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(400, 16))
    same_mean, same_std = metrics.kid_from_features(a, a)
    assert abs(same_mean) < 3 * same_std + 1e-3
    kids = [metrics.kid_from_features(a, rng.normal(size=(400, 16)) + shift)[0]
            for shift in (0.0, 0.5, 1.0)]
    assert abs(kids[0]) < 0.05 * kids[1]
    assert kids[0] < kids[1] < kids[2]
    assert np.isfinite(same_std) and same_std >= 0


def test_kid_std_defined_for_small_and_uneven_sets():
    rng = np.random.default_rng(2)
    mean, std = metrics.kid_from_features(rng.normal(size=(9, 8)), rng.normal(size=(500, 8)))
    assert np.isfinite(mean) and np.isfinite(std)


# ---------------------------------------------------------------- precision / recall

def test_precision_recall_identical_and_disjoint():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(200, 10))
    assert metrics.precision_recall(a, a.copy()) == (1.0, 1.0)
    assert metrics.precision_recall(a, a + 100.0) == (0.0, 0.0)


def test_precision_recall_hand_checked():
    # 1-D, k = 1. Real 0, 1, 2, 3: each ball has radius 1 (distance to the nearest other).
    # Fake 0.5, 3.9, 10, 10.5: radii 3.4, 3.4, 0.5, 0.5.
    # Precision: 0.5 (|0.5-0| <= 1) and 3.9 (|3.9-3| <= 1) are inside, 10 and 10.5 are not -> 1/2.
    # Recall: every real point is within 3.4 of 0.5 -> 1.
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [3.9], [10.0], [10.5]])
    assert metrics.precision_recall(real, fake, k=1) == (0.5, 1.0)
    # Swapped: precision = real inside fake manifold = 1, recall = fake inside real = 1/2.
    assert metrics.precision_recall(fake, real, k=1) == (1.0, 0.5)
    # k = 2 with real radii 2, 1, 1, 2 (1->0 and 1->2 tie at 1): 3.9 is inside (|3.9-3| <= 2).
    assert metrics.precision_recall(real, fake, k=2)[0] == 0.5


def test_precision_recall_chunking_does_not_change_result():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(157, 6))
    fake = rng.normal(size=(131, 6)) * 0.6 + 0.8
    whole = metrics.precision_recall(real, fake, chunk_rows=1000)
    assert metrics.precision_recall(real, fake, chunk_rows=7) == whole
    assert 0.0 < whole[0] < 1.0 and 0.0 < whole[1] < 1.0


# ---------------------------------------------------------------- SWD

def test_swd_halves_far_below_noise_and_blur(images):
    a, b, c = images[:96], images[96:192], images[192:]
    noise = np.random.default_rng(5).integers(0, 256, c.shape, dtype=np.uint8)
    halves = metrics.swd(a, b, seed=0)
    assert halves["resolutions"] == [32, 16]
    assert len(halves["levels"]) == 2
    assert halves["average"] == pytest.approx(np.mean(halves["levels"]))
    to_noise = metrics.swd(a, noise, seed=0)
    to_blur = metrics.swd(a, box_blur(c), seed=0)
    assert halves["average"] < 0.25 * to_noise["average"]
    assert halves["average"] < 0.6 * to_blur["average"]
    # Blur removes fine detail: the finest level shows it most.
    assert halves["levels"][0] < 0.3 * to_blur["levels"][0]


def test_swd_deterministic_and_handles_flat_images(images):
    a, b = images[:40], images[40:80]
    assert metrics.swd(a, b, seed=3) == metrics.swd(a, b, seed=3)
    # Uniform images have all-zero detail levels; the distance must stay finite.
    flat = np.full((40, 32, 32, 3), 128, np.uint8)
    result = metrics.swd(flat, a, seed=0)
    assert all(np.isfinite(v) for v in result["levels"])


def test_swd_uses_equal_counts_and_rejects_bad_sizes(images):
    assert metrics.swd(images[:30], images[30:80], max_images=20)["images"] == 20
    assert metrics.swd(images[:30], images[30:80])["images"] == 30
    with pytest.raises(ValueError):
        metrics.swd(images[:10, :24, :24], images[10:20, :24, :24])
    with pytest.raises(ValueError):
        metrics.swd(images[:10], images[10:20, :16, :16])


# ---------------------------------------------------------------- features

def test_extract_features_batching_and_iterators(images, net):
    x = images[:50]
    whole = metrics.extract_features(x, net, batch_size=64, log=None)
    assert whole.shape == (50, 64) and whole.dtype == np.float32
    np.testing.assert_allclose(metrics.extract_features(x, net, batch_size=7, log=None), whole,
                               rtol=1e-5, atol=1e-6)
    stream = (x[i:i + 16] for i in range(0, 50, 16))
    np.testing.assert_allclose(metrics.extract_features(stream, net, log=None), whole,
                               rtol=1e-5, atol=1e-6)


def test_extract_features_resizes_to_the_model_input(images):
    net64 = metrics.random_feature_net(input_size=64)
    feats = metrics.extract_features(images[:8], net64, log=None)       # 32 px -> 64 px
    assert feats.shape == (8, 64) and np.all(np.isfinite(feats))


def test_compute_all_with_injected_network(images, net):
    result = metrics.compute_all(images[:60], images[60:120], feature_model=net, log=None)
    assert set(result) >= {"fid", "kid", "swd", "precision", "recall"}
    assert result["fid"] >= 0 and set(result["kid"]) == {"mean", "std"}
    assert 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
    assert set(result["swd"]) >= {"levels", "average"}
    assert "skipped" not in result


# ---------------------------------------------------------------- Inception weights

@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_missing_weights_message(empty_keras_home):
    """Offline (the suite is), no weights in Keras' cache: one line naming the file, where it
    comes from and where it goes (more cases in test_pretrained.py)."""
    with pytest.raises(metrics.MissingWeightsError) as err:
        metrics.load_inception()
    message = str(err.value)
    assert "\n" not in message
    assert metrics.INCEPTION_WEIGHTS_URL in message
    assert str(empty_keras_home / "keras" / "models") in message
    assert "--inception-weights" in message
    with pytest.raises(metrics.MissingWeightsError, match="file not found"):
        metrics.load_inception(str(empty_keras_home / "nowhere.h5"))


def test_compute_all_skips_feature_metrics_without_weights(empty_keras_home, images):
    logged = []
    result = metrics.compute_all(images[:20], images[20:40], log=logged.append)
    assert result["fid"] is None and result["kid"] is None and result["precision"] is None
    assert metrics.INCEPTION_WEIGHTS_FILE in result["skipped"]
    assert result["skipped"] in logged
    assert np.isfinite(result["swd"]["average"])
