"""GAN evaluation: FID, KID, precision/recall on network features, and SWD on pixels.

Pure maths on arrays plus one feature extractor; nothing runs at import.

- ``extract_features(images, feature_model)``: uint8 images (N, H, W, 3) -> float32
  features (N, D), batched. The network is injectable: ``load_inception()`` gives Keras'
  ImageNet InceptionV3 (2048-d pool features, as for FID); tests pass a small random net.
- ``fid_from_features``, ``kid_from_features``, ``precision_recall``: metrics of two feature
  sets. FID and KID are tensorflow-gan's implementations.
- ``swd(real, fake)``: ProGAN's sliced Wasserstein distance between 7x7 patches of the
  Laplacian pyramids of two image sets, x 1e3, needing no pretrained weights.
- ``compute_all(real, fake)``: all of the above in the JSON shape ``evaluate.py`` writes.

The default Inception is Keras' ImageNet InceptionV3, not the TF1 graph
(``pt_inception-2015-12-05``) behind published FIDs, so those FID/KID values compare between
runs of this tool, not with numbers in papers. ``load_inception_2015()`` gives the 2015 graph
as TF-GAN serves it (TF-Hub tfgan/eval/inception/1, pool_3), for FIDs that compare with papers.
"""
import math
import os
import time

import numpy as np

from skingan import pretrained
from skingan.errors import UserError

INCEPTION_SIZE = 299                     # InceptionV3's input side, pixels
INCEPTION_WEIGHTS_FILE = pretrained.INCEPTION_V3.file_name
INCEPTION_WEIGHTS_URL = pretrained.INCEPTION_V3.origin

# SWD settings of ProGAN (Karras et al. 2018, metrics/sliced_wasserstein.py).
SWD_MIN_RESOLUTION = 16                  # coarsest Laplacian level, pixels
SWD_PATCH_SIZE = 7                       # descriptors are 7 x 7 x 3 neighbourhoods
SWD_PATCHES_PER_IMAGE = 128              # descriptors drawn per image per level
SWD_DIR_REPEATS = 4                      # projection matrices drawn ...
SWD_DIRS_PER_REPEAT = 128                # ... each of 128 random directions
SWD_IMAGE_CHUNK = 64                     # images per Laplacian-pyramid call (bounds memory)

PR_NEIGHBOURS = 3                        # k of the k-NN manifolds (Kynkaanniemi et al. 2019)
PR_CHUNK_ELEMENTS = 1 << 24              # distance-matrix chunk size (64 MB of float32)


# The 2015 Inception graph behind published FIDs, as TF-GAN serves it (TF-Hub module
# tfgan/eval/inception/1): a SavedModel called on float images (N, 299, 299, 3) in [-1, 1],
# returning {"logits": (N, 1008), "pool_3": (N, 1, 1, 2048) or (N, 2048)}; FID uses pool_3.
FID_NETWORKS = ("keras", "inception-2015")
INCEPTION_2015_URL = ("https://tfhub.dev/tensorflow/tfgan/eval/inception/1"
                      "?tf-hub-format=compressed")
INCEPTION_2015_ARCHIVE = "tfgan_eval_inception_1.tar.gz"
INCEPTION_2015_ENV = "SKINGAN_INCEPTION_2015"       # a local SavedModel folder
INCEPTION_2015_OUTPUT = "pool_3"


# The InceptionV3 weights are fetched as Keras fetches them (skingan.pretrained): from Keras'
# cache, downloaded into it once on first use unless offline.
MissingWeightsError = pretrained.MissingWeightsError


# ----------------------------------------------------------------------------------------------
# Feature networks
# ----------------------------------------------------------------------------------------------

WEIGHTS_HELP = (
    f"FID, KID, precision and recall use Keras' ImageNet InceptionV3 weights "
    f"({INCEPTION_WEIGHTS_FILE}, 84 MB). On first use they are downloaded once into Keras' "
    f"cache, ~/.keras/models/ ($KERAS_HOME/models/), as keras.applications.InceptionV3("
    f"weights='imagenet') does; --offline (or SKINGAN_OFFLINE=1) turns that off. On a machine "
    f"without internet, copy the file from a machine that has it (or from "
    f"{INCEPTION_WEIGHTS_URL}) into that folder, or pass --inception-weights PATH. Without the "
    f"weights these four are skipped and SWD, which needs no network, is still reported.")


def find_inception_weights(weights_path=None, log=print):
    """The weights file to use: ``weights_path`` if given (it must exist), else Keras' cached
    copy, downloaded into the cache now if it is not there (skingan.pretrained.fetch).
    Raises MissingWeightsError (one line) when there is none and none can be downloaded."""
    if weights_path:
        if not os.path.isfile(weights_path):
            raise MissingWeightsError(f"--inception-weights: file not found: {weights_path}")
        return weights_path
    return pretrained.fetch(pretrained.INCEPTION_V3, log, flag="--inception-weights")


def load_inception(weights_path=None, log=print):
    """Keras' ImageNet InceptionV3 without its classifier, global-average pooled: a keras.Model
    (None, 299, 299, 3) in [-1, 1] -> (None, 2048). Weights from ``weights_path`` or Keras'
    cache (downloaded there on first use unless offline); raises MissingWeightsError (a
    UserError) when there are none."""
    import keras

    path = find_inception_weights(weights_path, log)
    try:
        return keras.applications.InceptionV3(include_top=False, pooling="avg", weights=path,
                                              input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    except Exception as err:   # truncated download, wrong file: one line, not a traceback
        raise UserError(f"cannot load InceptionV3 weights from {path} "
                        f"({str(err).splitlines()[0] if str(err) else type(err).__name__}); "
                        f"expected Keras' {INCEPTION_WEIGHTS_FILE} (delete a damaged copy in "
                        "Keras' cache to download it again)") from None


class Inception2015:
    """The TF-GAN / TF-Hub 2015 Inception module as a feature model for extract_features:
    same interface as load_inception()'s keras.Model (name, input_shape, called on images
    in [-1, 1] with training=False) -> pool_3, flattened to (N, 2048).

    Its input convention, as TF-GAN feeds it: 299 x 299, values in [-1, 1] (x / 127.5 - 1
    from 0..255), images brought to 299 px by plain bilinear resizing (no antialiasing:
    tf.image.resize, as TF-GAN's own pipeline does), not Keras' antialiased resize."""
    name = "inception-2015"
    input_shape = (None, INCEPTION_SIZE, INCEPTION_SIZE, 3)
    resize_antialias = False

    def __init__(self, module, path):
        self.module, self.path = module, path

    def __call__(self, images, training=False):
        import tensorflow as tf
        out = self.module(images)
        if not isinstance(out, dict) or INCEPTION_2015_OUTPUT not in out:
            raise UserError(f"{self.path} is not TF-GAN's Inception module: calling it gave "
                            f"no '{INCEPTION_2015_OUTPUT}' output")
        pool = out[INCEPTION_2015_OUTPUT]
        return tf.reshape(pool, [tf.shape(pool)[0], -1])                 # (N, 2048)


def inception_2015_path(path=None, download=None, log=print):
    """The SavedModel folder of the 2015 Inception: `path`, else $SKINGAN_INCEPTION_2015,
    else Keras' cache (~/.keras/models/), downloading it there once on first use through
    keras.utils.get_file (one line says so). Raises UserError when it is not there and
    cannot be downloaded (no network, or download=False)."""
    path = path or os.environ.get(INCEPTION_2015_ENV)
    if path:
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise UserError(f"no SavedModel in {path} (no saved_model.pb); pass the unpacked "
                            f"folder of {INCEPTION_2015_URL}")
        return path
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    cached = os.path.join(keras_home, "models", "tfgan_eval_inception_1")
    if os.path.isfile(os.path.join(cached, "saved_model.pb")):
        return cached
    how = (f"download {INCEPTION_2015_URL} on a machine with internet, unpack it into "
           f"{cached} (or any folder: pass --inception-2015 FOLDER or set {INCEPTION_2015_ENV})")
    if download is None:
        download = not pretrained.offline()
    if not download:
        raise UserError(f"the 2015 Inception (TF-GAN) is not on this machine and downloads "
                        f"are off: {how}")
    import keras
    if log:
        log(f"downloading the 2015 Inception (TF-GAN, ~90 MB) once into {cached}")
    try:
        keras.utils.get_file(INCEPTION_2015_ARCHIVE, INCEPTION_2015_URL, cache_dir=keras_home,
                             cache_subdir="models", extract=True)
    except Exception as err:
        raise UserError(f"cannot download the 2015 Inception ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}): {how}") from None
    found = [root for root, _, files in os.walk(os.path.join(keras_home, "models"))
             if "saved_model.pb" in files and "tfgan" in root]
    if not found:
        raise UserError(f"the download of {INCEPTION_2015_URL} held no SavedModel: {how}")
    return found[0]


def load_inception_2015(path=None, download=None, log=print):
    """The 2015 Inception (Inception2015) from a local SavedModel folder, or downloaded once
    (inception_2015_path)."""
    import tensorflow as tf
    folder = inception_2015_path(path, download, log)
    try:
        module = tf.saved_model.load(folder)
    except Exception as err:
        raise UserError(f"cannot load the SavedModel in {folder} "
                        f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") \
            from None
    return Inception2015(module, folder)


def random_feature_net(input_size=64, seed=0):
    """FOR TESTS ONLY: a small randomly initialised conv net (None, S, S, 3) -> (None, 64) with
    the same interface as ``load_inception()``. Its FID/KID/precision/recall are meaningless as
    quality scores; they only exercise the code paths."""
    import keras
    from keras import layers

    def init(i):
        return keras.initializers.HeNormal(seed=seed + i)

    inputs = keras.Input((input_size, input_size, 3))
    x = inputs                                                           # (S, S, 3)
    for i, filters in enumerate((16, 32, 64)):                           # S/2, S/4, S/8
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu",
                          kernel_initializer=init(i))(x)
    outputs = layers.GlobalAveragePooling2D()(x)                         # (64,)
    return keras.Model(inputs, outputs, name="random_small_feature_net")


def _batches(images, batch_size):
    """Yield uint8 batches from an array (N, H, W, 3) or pass through an iterable of batches."""
    if isinstance(images, np.ndarray) or hasattr(images, "__array__") and hasattr(images, "shape"):
        for start in range(0, len(images), batch_size):
            yield np.asarray(images[start:start + batch_size])
    else:
        yield from images


def extract_features(images, feature_model, batch_size=64, log=print, label="features"):
    """Run ``feature_model`` over uint8 images, batch by batch -> float32 (N, D).

    images: uint8 array (N, H, W, 3), or an iterable of such batches (e.g. straight from a
    generator). Each batch is cast to float 0..255, resized to the model's input size
    (bilinear, antialiased; 299 for Inception), mapped to [-1, 1] by Keras'
    ``inception_v3.preprocess_input`` (x / 127.5 - 1) and run with training=False.
    A progress line is logged about every 10 s and at the end.
    """
    import tensorflow as tf
    from keras.applications.inception_v3 import preprocess_input

    size = tuple(feature_model.input_shape[1:3])
    antialias = getattr(feature_model, "resize_antialias", True)   # Inception2015: plain bilinear
    step = None
    feats, done = [], 0
    started = last_log = time.perf_counter()
    total = len(images) if hasattr(images, "__len__") and hasattr(images, "shape") else None
    for batch in _batches(images, batch_size):
        batch = np.asarray(batch)
        if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {batch.dtype} {batch.shape}")
        if step is None:       # one trace per call: batch size may vary, image size may not
            height, width = batch.shape[1:3]

            @tf.function(input_signature=[tf.TensorSpec([None, height, width, 3], tf.uint8)])
            def step(x):
                x = tf.cast(x, tf.float32)                                  # 0..255
                if size != (height, width) and None not in size:
                    x = tf.image.resize(x, size, method="bilinear", antialias=antialias)
                x = preprocess_input(x)                                     # -> [-1, 1]
                return feature_model(x, training=False)
        feats.append(step(tf.constant(batch)).numpy().astype(np.float32))
        done += len(batch)
        now = time.perf_counter()
        if log and now - last_log > 10:
            of = f"/{total}" if total else ""
            log(f"{label}: {done}{of} images ({done / (now - started):.1f} img/s)")
            last_log = now
    if not feats:
        raise ValueError("no images to extract features from")
    if log:
        log(f"{label}: {done} images done in {time.perf_counter() - started:.1f} s")
    return np.concatenate(feats, axis=0)


# ----------------------------------------------------------------------------------------------
# Metrics on features
# ----------------------------------------------------------------------------------------------

def _check_features(a, b, minimum, what):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"{what} needs two (N, D) feature arrays of the same D, "
                         f"got {a.shape} and {b.shape}")
    if len(a) < minimum or len(b) < minimum:
        raise ValueError(f"{what} needs at least {minimum} samples per set, "
                         f"got {len(a)} and {len(b)}")
    return a, b


def fid_from_features(a, b):
    """Frechet distance between Gaussians fitted to two feature sets (Heusel et al. 2017):

        FID = |mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2))

    with sample means mu and unbiased covariances C, computed in float64 by tensorflow-gan's
    ``frechet_classifier_distance_from_activations`` (its matrix root uses an SVD). Biased
    upwards for small N: compare FIDs computed on equal numbers of images.
    """
    from skingan.tfgan_compat import tfgan_eval

    a, b = _check_features(a, b, 2, "FID")
    return float(tfgan_eval.frechet_classifier_distance_from_activations(
        np.asarray(a, np.float64), np.asarray(b, np.float64)))


def kid_from_features(a, b, num_subsets=10, max_subset_size=1000, seed=0):
    """Kernel Inception Distance (Binkowski et al. 2018) -> (mean, std).

    The unbiased MMD^2 estimate with the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3:

        KID = E[k(a, a')] + E[k(b, b')] - 2 E[k(a, b)]

    by tensorflow-gan's ``kernel_classifier_distance_and_std_from_activations``, which splits
    both sets into blocks (subsets), averages the per-block estimates (mean) and returns the
    standard error of that mean over blocks (std). Blocks hold at most ``max_subset_size``
    samples of the larger set; we ask for at least ``num_subsets`` blocks (fewer if the smaller
    set cannot give each block 2 samples) so the std is defined. Features are shuffled first
    with ``seed``, as tensorflow-gan's blocking assumes random order.
    """
    import tensorflow as tf
    from skingan.tfgan_compat import tfgan_eval

    a, b = _check_features(a, b, 4, "KID")
    rng = np.random.default_rng(seed)
    a = a[rng.permutation(len(a))]
    b = b[rng.permutation(len(b))]
    n_min, n_max = min(len(a), len(b)), max(len(a), len(b))
    blocks = max(math.ceil(n_max / max_subset_size), num_subsets)
    blocks = max(2, min(blocks, n_min // 2))          # every block gets >= 2 of each set
    mean, std = tfgan_eval.kernel_classifier_distance_and_std_from_activations(
        tf.constant(a, tf.float64), tf.constant(b, tf.float64),
        max_block_size=math.ceil(n_max / blocks))
    return float(mean), float(std)


def _squared_distances(x, y):
    """Pairwise squared Euclidean distances (len(x), len(y)): |x|^2 + |y|^2 - 2 x.y, >= 0."""
    d2 = (np.sum(x * x, axis=1)[:, None] + np.sum(y * y, axis=1)[None, :]
          - 2.0 * (x @ y.T))
    return np.maximum(d2, 0.0)


def _knn_radii(x, k, chunk_rows):
    """Squared distance from each row of x to its k-th nearest other row of x.

    The row's own distance (0) is the smallest in its row, so after partitioning the k-th
    smallest value (0-based index k) is the k-th nearest *other* sample."""
    radii = np.empty(len(x), x.dtype)
    for start in range(0, len(x), chunk_rows):
        d2 = _squared_distances(x[start:start + chunk_rows], x)
        radii[start:start + chunk_rows] = np.partition(d2, k, axis=1)[:, k]
    return radii


def precision_recall(real_feats, fake_feats, k=PR_NEIGHBOURS, chunk_rows=None):
    """Improved precision and recall (Kynkaanniemi et al. 2019) -> (precision, recall).

    Each set's manifold is the union of balls around its samples, the ball of sample x having
    radius |x - NN_k(x)|, the distance to its k-th nearest neighbour in the same set.
    precision = fraction of fake samples inside the real manifold (fidelity);
    recall    = fraction of real samples inside the fake manifold (diversity).
    A point y is inside a manifold if |y - x| <= radius(x) for some sample x of it.

    Distances are computed in float32 in row chunks (``chunk_rows`` x N at a time, about
    64 MB by default), so 10k x 10k sets never hold a full distance matrix.
    """
    real, fake = _check_features(real_feats, fake_feats, k + 1, "precision/recall")
    real = np.asarray(real, np.float32)
    fake = np.asarray(fake, np.float32)
    if chunk_rows is None:
        chunk_rows = max(1, PR_CHUNK_ELEMENTS // max(len(real), len(fake)))
    real_radii = _knn_radii(real, k, chunk_rows)          # squared radii
    fake_radii = _knn_radii(fake, k, chunk_rows)
    fake_inside = np.zeros(len(fake), bool)                # -> precision
    real_covered = np.zeros(len(real), bool)               # -> recall
    for start in range(0, len(fake), chunk_rows):
        stop = start + chunk_rows
        d2 = _squared_distances(fake[start:stop], real)    # (chunk of fake, all real)
        fake_inside[start:stop] = np.any(d2 <= real_radii[None, :], axis=1)
        real_covered |= np.any(d2 <= fake_radii[start:stop, None], axis=0)
    return float(np.mean(fake_inside)), float(np.mean(real_covered))


# ----------------------------------------------------------------------------------------------
# Sliced Wasserstein distance (pixels, no pretrained network)
# ----------------------------------------------------------------------------------------------

def swd_resolutions(resolution):
    """Laplacian-pyramid levels SWD uses for square images of side ``resolution``:
    resolution, resolution / 2, ..., 16. Raises ValueError if that is not a power of two >= 16."""
    if resolution < SWD_MIN_RESOLUTION or resolution & (resolution - 1):
        raise ValueError(f"SWD needs square images whose side is a power of two >= "
                         f"{SWD_MIN_RESOLUTION}, got {resolution}")
    levels = []
    while resolution >= SWD_MIN_RESOLUTION:
        levels.append(resolution)
        resolution //= 2
    return levels


def _pyramid_descriptors(images, num_levels, rng):
    """Random 7x7x3 neighbourhoods of every Laplacian level of uint8 images (N, R, R, 3)
    -> one float32 array (N * SWD_PATCHES_PER_IMAGE, 7, 7, 3) per level, finest first.

    The pyramid is tensorflow-gan's ``laplacian_pyramid`` (5x5 binomial filter, the same as
    OpenCV's pyrDown/pyrUp used by ProGAN): level l is the detail lost between resolution
    R / 2^l and R / 2^(l+1); the last level is the 16 px low-pass image itself. Images go
    through in chunks so memory stays bounded whatever N is.
    """
    import tensorflow as tf
    from skingan.tfgan_compat import tfgan_eval

    half = SWD_PATCH_SIZE // 2
    per_level = [[] for _ in range(num_levels)]
    for start in range(0, len(images), SWD_IMAGE_CHUNK):
        chunk = tf.constant(np.asarray(images[start:start + SWD_IMAGE_CHUNK]), tf.float32)
        for level, pyr in enumerate(tfgan_eval.laplacian_pyramid(chunk, num_levels)):
            pyr = pyr.numpy()                                       # (n, r, r, 3)
            n, r = pyr.shape[:2]
            count = n * SWD_PATCHES_PER_IMAGE
            # Random patch centres at least `half` pixels from the border (as ProGAN).
            img = np.repeat(np.arange(n), SWD_PATCHES_PER_IMAGE)[:, None, None]
            y = rng.integers(half, r - half, size=count)[:, None, None]
            x = rng.integers(half, r - half, size=count)[:, None, None]
            offsets = np.arange(-half, half + 1)
            rows = y + offsets[None, :, None]                       # (count, 7, 1)
            cols = x + offsets[None, None, :]                       # (count, 1, 7)
            per_level[level].append(pyr[img, rows, cols])           # (count, 7, 7, 3)
    return [np.concatenate(parts, axis=0) for parts in per_level]


def _normalise_descriptors(desc):
    """ProGAN's finalize_descriptors: standardise each colour channel over all descriptors of
    the set (mean 0, std 1), then flatten to (count, 147). Unlike tensorflow-gan's per-patch
    normalisation this is defined for flat patches (no 0/0 on uniform backgrounds)."""
    mean = desc.mean(axis=(0, 1, 2), keepdims=True)
    std = desc.std(axis=(0, 1, 2), keepdims=True)
    desc = (desc - mean) / np.maximum(std, 1e-8)
    return desc.reshape(len(desc), -1).astype(np.float32)


def _sliced_wasserstein(a, b, rng):
    """Approximate W1 distance between two equal-size point sets in R^147.

    For random unit directions d, the projections a.d and b.d are 1-D samples, whose W1
    distance is the mean absolute difference of the sorted values. SWD is that, averaged over
    SWD_DIR_REPEATS x SWD_DIRS_PER_REPEAT directions (ProGAN: 4 x 128)."""
    dists = []
    for _ in range(SWD_DIR_REPEATS):
        dirs = rng.standard_normal((a.shape[1], SWD_DIRS_PER_REPEAT)).astype(np.float32)
        dirs /= np.sqrt(np.sum(dirs * dirs, axis=0, keepdims=True))     # unit columns
        # Projections laid out (dirs, count) so each sort runs over contiguous memory.
        proj_a = np.sort(dirs.T @ a.T, axis=1)
        proj_b = np.sort(dirs.T @ b.T, axis=1)
        dists.append(np.mean(np.abs(proj_a - proj_b)))
    return float(np.mean(dists))


def swd(real_uint8, fake_uint8, seed=0, max_images=None):
    """Sliced Wasserstein distance of ProGAN (Karras et al. 2018), x 1e3.

    real_uint8, fake_uint8: uint8 (N, R, R, 3) at the same R, a power of two >= 16. Both sets
    are cut to the same number of images n = min(N_real, N_fake, max_images) (a random subset,
    drawn with ``seed``), because the sorted-projection distance pairs descriptors one to one.
    For each Laplacian level from R down to 16 px, SWD_PATCHES_PER_IMAGE random 7x7x3
    descriptors per image are drawn, standardised per channel, and compared with
    ``_sliced_wasserstein``. Returns {"levels": [per level, finest first], "resolutions":
    [R, R/2, ..., 16], "average": mean of the levels, "images": n}. Deterministic for a seed,
    and uses no global random state. Values depend on n: compare SWDs computed on equal n.
    """
    real = np.asarray(real_uint8)
    fake = np.asarray(fake_uint8)
    for name, x in (("real", real), ("fake", fake)):
        if x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] != x.shape[2]:
            raise ValueError(f"SWD needs square RGB images (N, R, R, 3); {name} is {x.shape}")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"SWD needs real and fake images of one size, got {real.shape[1:]} "
                         f"and {fake.shape[1:]}")
    resolutions = swd_resolutions(real.shape[1])
    rng = np.random.default_rng(seed)
    n = min(len(real), len(fake), max_images or len(real))
    if n < 1:
        raise ValueError("SWD needs at least one image in each set")
    real = real[np.sort(rng.choice(len(real), n, replace=False))] if len(real) > n else real
    fake = fake[np.sort(rng.choice(len(fake), n, replace=False))] if len(fake) > n else fake

    real_desc = _pyramid_descriptors(real, len(resolutions), rng)
    fake_desc = _pyramid_descriptors(fake, len(resolutions), rng)
    levels = []
    for a, b in zip(real_desc, fake_desc):
        levels.append(1e3 * _sliced_wasserstein(_normalise_descriptors(a),
                                                _normalise_descriptors(b), rng))
    return {"levels": levels, "resolutions": resolutions,
            "average": float(np.mean(levels)), "images": int(n)}


# ----------------------------------------------------------------------------------------------
# Everything at once
# ----------------------------------------------------------------------------------------------

def compute_all(real_uint8, fake_uint8, feature_model=None, inception_weights=None, seed=0,
                batch_size=64, k=PR_NEIGHBOURS, swd_max_images=None, log=print, skipped=None):
    """All metrics of two uint8 image sets (N, R, R, 3) of one resolution -> a JSON-ready dict:

        {"fid": float, "kid": {"mean", "std"}, "swd": {"levels", "resolutions", "average",
         "images"}, "precision": float, "recall": float, "n_real", "n_fake", "resolution",
         "feature_net": name, "skipped": reason (only when feature metrics were skipped)}

    feature_model: a keras.Model like ``load_inception()``'s. None loads InceptionV3 from
    ``inception_weights`` or Keras' cache; if no weights file is found *and* none was named,
    FID/KID/precision/recall are None, the reason is logged and stored under "skipped", and
    SWD is still computed. A named weights file that does not exist raises MissingWeightsError.
    skipped: the reason the feature metrics are not computed, when the caller has found it
    already (evaluate.py loads the network once per run): stored, not logged again.
    """
    result = {"fid": None, "kid": None, "swd": None, "precision": None, "recall": None,
              "n_real": int(len(real_uint8)), "n_fake": int(len(fake_uint8)),
              "resolution": int(np.shape(real_uint8)[1]), "feature_net": None}
    if skipped is not None:
        result["skipped"], feature_model = skipped, None
    elif feature_model is None:
        try:
            feature_model = load_inception(inception_weights, log)
        except MissingWeightsError as err:
            if inception_weights:
                raise
            result["skipped"] = f"FID, KID, precision and recall skipped: {err.short()}"
            if log:
                log(result["skipped"])

    if feature_model is not None:
        result["feature_net"] = feature_model.name
        real_feats = extract_features(real_uint8, feature_model, batch_size, log, "real features")
        fake_feats = extract_features(fake_uint8, feature_model, batch_size, log, "fake features")
        result["fid"] = fid_from_features(real_feats, fake_feats)
        mean, std = kid_from_features(real_feats, fake_feats, seed=seed)
        result["kid"] = {"mean": mean, "std": std}
        result["precision"], result["recall"] = precision_recall(real_feats, fake_feats, k)

    started = time.perf_counter()
    result["swd"] = swd(real_uint8, fake_uint8, seed=seed, max_images=swd_max_images)
    if log:
        log(f"swd: {result['swd']['images']} images per set in "
            f"{time.perf_counter() - started:.1f} s")
    return result
