"""Is the generator copying its training images? The data-copying test of Meehan, Chaudhuri
and Dasgupta, "A Non-Parametric Test to Detect Data-Copying in Generative Models" (AISTATS
2020, arXiv 2004.05675), and the per-image view that goes with it.

Three samples in one feature space: the training set T, held-out real images P_n (never
trained on) and generated images Q_m.

1. Cells: k-means on T (scikit-learn, seeded); every point goes to the cell of its nearest
   centre. Each cell must hold training and held-out points (the reference code refuses
   otherwise), so --cells is bounded by what the held-out set can fill; we also ask for
   4 held-out images per cell on average (MIN_HELDOUT_PER_CELL), the fewest with which
   copies can score below the threshold.
2. In each cell pi, the distance of every point to its nearest training point of that cell
   (as the reference code's ``Zu`` does), L(P_n | pi) and L(Q_m | pi), and the Mann-Whitney
   U of the generated distances against the held-out ones:

       U     = #{(q, p) : L(q) > L(p)} (+ 1/2 per tie)      q in Q_m|pi (m), p in P_n|pi (n)
       Z_U   = (U - m n / 2) / sqrt(m n (m + n + 1) / 12)    (the paper's normal approximation)

   Z_U << 0: generated points sit closer to the training set than fresh data does (copying);
   Z_U >> 0: farther (underfitting). The reference code adds a 1/2 continuity correction
   (mean m n / 2 - 1/2), which moves Z_U by 0.5 / sd: negligible at our sizes, not used here.
3. C_T = sum over kept cells of P_n(pi) Z_U(pi) / sum over kept cells of P_n(pi), P_n(pi)
   the fraction of held-out points in the cell. A cell is kept when Q_m(pi) > tau with
   tau = 20 / m, i.e. it holds more than 20 generated points: the reference code's choice in
   every experiment of the paper.

Per image, against the whole training set: the distance of each generated image to its
nearest training image, relative to the median held-out-to-train distance (1 = as far as a
typical fresh image), and the near-copy fraction: generated images closer to a training
image than 95 % of held-out images are (below the 5th percentile of held-out distances; 0.05
for a generator that behaves like fresh data).

Features: InceptionV3 pool features (2048-d, skingan.metrics) where its weights are on the
machine, otherwise "pixels-32": every image resized to 32 x 32 (Lanczos), flattened to 3072
values in [0, 1] and standardised dimension by dimension with the training set's mean and
standard deviation (floored at one grey level). Numbers in different feature spaces are not
comparable: every result names its space.
"""
import numpy as np

from skingan.errors import UserError

DEFAULT_CELLS = 5                # the reference's choice for its small 2-D data (moons); 50 on MNIST
MIN_GENERATED_PER_CELL = 20      # tau = 20 / m: a cell counts with more than 20 generated points
NEAR_COPY_QUANTILE = 0.05        # near copy: closer than 95 % of held-out images are
COPYING_THRESHOLD = -3.0         # C_T below this: the generator copies (see docs/copying.md)
PIXEL_SIZE = 32                  # side of the pixel feature's images
PIXEL_FEATURE = f"pixels-{PIXEL_SIZE}"
INCEPTION_FEATURE = "inception-v3-pool"
COPIES_SHOWN = 16                # pairs in copies.png
# Held-out images per cell the test needs. With n held-out points in a cell, even exact
# copies (U = 0) give Z_U = -sqrt(3 m n / (m + n + 1)) > -sqrt(3 n): with n = 3 no cell
# could fall below COPYING_THRESHOLD; n = 4 allows -3.46.
MIN_HELDOUT_PER_CELL = 4


class CopyingError(UserError):
    """The three sets cannot give a data-copying test (too few images, unfillable cells)."""


# ----------------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------------

def resize_images(images, size):
    """uint8 (N, r, r, 3) -> uint8 (N, size, size, 3), Lanczos as data_loader does."""
    from PIL import Image
    images = np.asarray(images)
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([np.asarray(Image.fromarray(img).resize((size, size),
                                                            Image.Resampling.LANCZOS))
                     for img in images])


def _flat_pixels(images):
    """uint8 (N, r, r, 3) -> float32 (N, 32 * 32 * 3) in [0, 1]."""
    return resize_images(images, PIXEL_SIZE).reshape(len(images), -1).astype(np.float32) / 255.0


def pixel_stats(train):
    """The training set's per-dimension mean and std of the pixels-32 feature (std floored
    at 1/255, one grey level, so a constant pixel does not blow up)."""
    flat = _flat_pixels(train)
    return flat.mean(axis=0), np.maximum(flat.std(axis=0), 1.0 / 255.0)


def pixel_project(images, stats):
    """The pixels-32 feature of uint8 images with the training set's `stats`."""
    mean, std = stats
    return (_flat_pixels(images) - mean) / std


def pixel_features(train, *others):
    """The "pixels-32" feature of uint8 image sets: (N, 32 * 32 * 3) float32 each, every
    dimension standardised with the training set's statistics (pixel_stats). Returns
    [train features, *other sets' features]."""
    stats = pixel_stats(train)
    return [pixel_project(x, stats) for x in (train, *others)]


def features(train, heldout, generated, feature="auto", feature_model=None,
             inception_weights=None, batch_size=64, log=print):
    """The three uint8 sets in one feature space -> (name, [train, heldout, generated]).

    feature: "auto" (Inception where weights exist, else pixels-32), "inception-v3-pool"
    or "pixels-32". feature_model: a loaded keras.Model like metrics.load_inception()'s
    (saves loading it twice); with "inception-v3-pool" and no weights, MissingWeightsError."""
    from skingan import metrics
    if feature in ("auto", INCEPTION_FEATURE) and feature_model is None:
        try:
            feature_model = metrics.load_inception(inception_weights)
        except metrics.MissingWeightsError:
            if feature == INCEPTION_FEATURE or inception_weights:
                raise
            if log:
                log("copying test: no InceptionV3 weights, using the pixels-32 feature")
    if feature == PIXEL_FEATURE or feature_model is None:
        return PIXEL_FEATURE, pixel_features(train, heldout, generated)
    feats = [metrics.extract_features(x, feature_model, batch_size, log=None)
             for x in (train, heldout, generated)]
    return INCEPTION_FEATURE, feats


# ----------------------------------------------------------------------------------------------
# The test
# ----------------------------------------------------------------------------------------------

def nearest(points, train):
    """Euclidean distance of each row of `points` to its nearest row of `train`, and that
    row's index: ((N,) float64, (N,) int)."""
    from sklearn.neighbors import NearestNeighbors
    dist, index = NearestNeighbors(n_neighbors=1).fit(train).kneighbors(points)
    return dist[:, 0], index[:, 0]


def mann_whitney_z(generated_d, heldout_d):
    """Z_U of the paper: scipy's Mann-Whitney U of the generated distances (first sample)
    against the held-out ones, standardised under H0 with the normal approximation
    (no continuity correction, no tie correction). Negative: generated points are closer."""
    from scipy.stats import mannwhitneyu
    m, n = len(generated_d), len(heldout_d)
    u = mannwhitneyu(generated_d, heldout_d, alternative="less").statistic   # U of Q_m
    return float((u - m * n / 2.0) / np.sqrt(m * n * (m + n + 1) / 12.0))


def fit_cells(train_feats, cells, seed=0):
    """k-means with `cells` centres on the training features (scikit-learn, seeded)."""
    from sklearn.cluster import KMeans
    return KMeans(n_clusters=cells, n_init=10, random_state=seed).fit(
        np.asarray(train_feats, np.float64))


def check_sizes(n_train, n_heldout, cells):
    """Refuse a test the sets cannot fill: every cell needs a training and a held-out point."""
    if cells < 1:
        raise CopyingError(f"--cells must be at least 1, got {cells}")
    needed = MIN_HELDOUT_PER_CELL * cells
    if n_heldout < needed:
        raise CopyingError(f"the data-copying test with {cells} cells needs at least {needed} "
                           f"held-out images ({MIN_HELDOUT_PER_CELL} per cell: with fewer, even "
                           f"exact copies cannot reach C_T {COPYING_THRESHOLD:g}), got "
                           f"{n_heldout}; hold out more images or pass fewer --cells")
    if n_train < cells:
        raise CopyingError(f"the data-copying test with {cells} cells needs at least {cells} "
                           f"training images, got {n_train}")


def check_cells(kmeans, train, heldout):
    """Every cell must hold training and held-out points (the reference refuses otherwise).
    Returns the cells of the training and held-out points."""
    cell_t, cell_p = (kmeans.predict(np.asarray(x, np.float64)) for x in (train, heldout))
    for c in range(kmeans.n_clusters):
        n_t, n_p = int(np.sum(cell_t == c)), int(np.sum(cell_p == c))
        if n_t == 0 or n_p == 0:
            raise CopyingError(
                f"cell {c} of {kmeans.n_clusters} holds {n_p} held-out and {n_t} training "
                "images; every cell needs both: pass fewer --cells or hold out more images")
    return cell_t, cell_p


def data_copying_test(train_feats, heldout_feats, generated_feats, cells=DEFAULT_CELLS,
                      seed=0, kmeans=None, min_generated=MIN_GENERATED_PER_CELL):
    """C_T and its per-cell table for three feature sets (N, D) -> dict:

        {"C_T": float, "cells": k, "cells_used": kept cells, "per_cell": [{"cell",
         "train", "heldout", "generated", "weight" P_n(pi), "z" or None, "used"}],
         "n_train", "n_heldout", "n_generated"}

    kmeans: cells already fitted on these training features (training-time scoring fits
    them once); else fitted here with `seed`. Raises CopyingError when a cell lacks held-out
    or training points, or when no cell holds more than `min_generated` generated points."""
    train = np.asarray(train_feats, np.float64)
    heldout = np.asarray(heldout_feats, np.float64)
    generated = np.asarray(generated_feats, np.float64)
    check_sizes(len(train), len(heldout), cells)
    kmeans = kmeans or fit_cells(train, cells, seed)
    cell_t, cell_p = check_cells(kmeans, train, heldout)
    cell_q = kmeans.predict(generated)                 # all float64, as the cells were fitted
    rows = []
    for c in range(cells):
        t, p, q = train[cell_t == c], heldout[cell_p == c], generated[cell_q == c]
        row = {"cell": c, "train": len(t), "heldout": len(p), "generated": len(q),
               "weight": len(p) / len(heldout), "z": None, "used": len(q) > min_generated}
        if len(q):
            row["z"] = mann_whitney_z(nearest(q, t)[0], nearest(p, t)[0])
        rows.append(row)
    used = [r for r in rows if r["used"]]
    if not used:
        raise CopyingError(
            f"no cell holds more than {min_generated} of the {len(generated)} generated "
            f"images; the test needs about {(min_generated + 1) * cells} or more generated "
            "images (or fewer --cells)")
    weights = np.array([r["weight"] for r in used])
    c_t = float(np.dot(weights, [r["z"] for r in used]) / weights.sum())
    return {"C_T": c_t, "cells": cells, "cells_used": len(used), "per_cell": rows,
            "n_train": len(train), "n_heldout": len(heldout), "n_generated": len(generated)}


def nearest_copies(train_feats, heldout_feats, generated_feats, quantile=NEAR_COPY_QUANTILE):
    """Per generated image, against the whole training set -> dict:

        {"distance": (m,) d(g, T), "index": (m,) its nearest training image,
         "relative": (m,) d(g, T) / median over held-out h of d(h, T),
         "threshold": the `quantile` of held-out distances, "near_copy": (m,) bool
         d(g, T) < threshold, "near_copy_fraction": mean of near_copy}"""
    train = np.asarray(train_feats, np.float64)
    held_d, _ = nearest(np.asarray(heldout_feats, np.float64), train)
    gen_d, index = nearest(np.asarray(generated_feats, np.float64), train)
    threshold = float(np.quantile(held_d, quantile))
    near = gen_d < threshold
    return {"distance": gen_d, "index": index, "relative": gen_d / float(np.median(held_d)),
            "threshold": threshold, "near_copy": near,
            "near_copy_fraction": float(np.mean(near))}


def run_test(train_feats, heldout_feats, generated_feats, feature, cells=DEFAULT_CELLS, seed=0,
             kmeans=None):
    """The cell test and the per-image view together -> (JSON-ready summary, per-image dict).

    The summary is what evaluate.py --json writes under "copying"."""
    result = data_copying_test(train_feats, heldout_feats, generated_feats, cells, seed, kmeans)
    per_image = nearest_copies(train_feats, heldout_feats, generated_feats)
    result.update(feature=feature, near_copy_fraction=per_image["near_copy_fraction"],
                  median_relative_distance=float(np.median(per_image["relative"])),
                  copies=bool(result["C_T"] < COPYING_THRESHOLD),
                  threshold=COPYING_THRESHOLD)
    return result, per_image


# ----------------------------------------------------------------------------------------------
# Showing it
# ----------------------------------------------------------------------------------------------

def closest_pairs(per_image, count=COPIES_SHOWN):
    """The `count` generated images nearest to a training image, closest first:
    [(generated index, training index, distance)]."""
    order = np.argsort(per_image["distance"], kind="stable")[:count]
    return [(int(g), int(per_image["index"][g]), float(per_image["distance"][g]))
            for g in order]


def copies_grid(generated_uint8, train_uint8, pairs, pairs_per_row=4):
    """copies.png's image: each pair is a generated image with its nearest training image to
    its right, `pairs_per_row` pairs per row (empty slots white). Training images are brought
    to the generated images' size. Returns uint8 (H, W, 3)."""
    from skingan import images as image_io
    size = np.asarray(generated_uint8).shape[1]
    tiles = []
    for g, t, _ in pairs:
        tiles.append(np.asarray(generated_uint8[g]))
        tiles.append(resize_images(np.asarray(train_uint8[t])[None], size)[0])
    cols = 2 * pairs_per_row
    rows = max(1, -(-len(tiles) // cols))
    blank = np.full((size, size, 3), 255, np.uint8)
    tiles += [blank] * (rows * cols - len(tiles))
    return image_io.make_grid(np.stack(tiles), rows, cols)


def save_copies_png(path, generated_uint8, train_uint8, per_image, count=COPIES_SHOWN):
    """Write copies.png (see copies_grid) -> the pairs shown."""
    from skingan import images as image_io
    pairs = closest_pairs(per_image, count)
    image_io.save_png(copies_grid(generated_uint8, train_uint8, pairs), path)
    return pairs


def format_lines(result, verbose=False):
    """Text lines for evaluate.py: C_T, the near-copy fraction, and with `verbose` the
    per-cell table."""
    verdict = ("COPIES the training set" if result["copies"] else
               "underfits (farther from the training set than fresh data)" if result["C_T"] > 3
               else "no sign of copying")
    lines = [f"{'C_T':<16}{result['C_T']:.3f}   ({result['feature']}, {result['cells_used']}"
             f"/{result['cells']} cells used; < {result['threshold']:g}: copies; ~0: like "
             f"fresh data) -> {verdict}",
             f"{'near copies':<16}{result['near_copy_fraction']:.3f}   (generated images "
             "closer to a training image than 95 % of held-out images; fresh data: 0.05)",
             f"{'NN dist. ratio':<16}{result['median_relative_distance']:.3f}   (median "
             "distance to the nearest training image / held-out's median)",
             f"{'':<16}train {result['n_train']}, held-out {result['n_heldout']}, generated "
             f"{result['n_generated']} images"]
    if verbose:
        lines.append(f"  {'cell':>4} {'train':>6} {'held':>6} {'gen':>6} {'weight':>7} "
                     f"{'Z_U':>8}  used")
        for r in result["per_cell"]:
            z = "n/a" if r["z"] is None else f"{r['z']:.3f}"
            lines.append(f"  {r['cell']:>4} {r['train']:>6} {r['heldout']:>6} "
                         f"{r['generated']:>6} {r['weight']:>7.3f} {z:>8}  "
                         f"{'yes' if r['used'] else 'no (<= 20 generated)'}")
    return lines


# ----------------------------------------------------------------------------------------------
# Where the three sets come from
# ----------------------------------------------------------------------------------------------

def split_by_ids(source, trained_ids):
    """data_loader.ImageSource of one class -> (trained on, held out): the images whose ids
    (file stems) are in `trained_ids`, and every other image of the source."""
    import dataclasses

    from data_loader import image_id
    trained_ids = set(trained_ids)
    train = [p for p in source.paths if image_id(p) in trained_ids]
    heldout = [p for p in source.paths if image_id(p) not in trained_ids]
    return (dataclasses.replace(source, paths=train), dataclasses.replace(source, paths=heldout))


def check_no_overlap(train_paths, heldout_paths, train_uint8=None, heldout_uint8=None,
                     what=("training", "held-out")):
    """Refuse held-out images that are training images: the same image id (file stem), or
    identical pixels under another name. Pixels are compared as decoded arrays when given
    (uint8, in path order), else by decoding every file at its own size (PIL, RGB)."""
    import hashlib

    from data_loader import image_id
    ids = {image_id(p) for p in train_paths}
    shared = [p for p in heldout_paths if image_id(p) in ids]
    if shared:
        raise CopyingError(f"{len(shared)} {what[1]} image(s) are also {what[0]} images (same "
                           f"id), e.g. {shared[0]}; the held-out set must be images the GAN "
                           "never saw")

    def digest(img):
        return hashlib.sha1(np.ascontiguousarray(img).tobytes()).hexdigest()

    def file_digest(path):
        from PIL import Image
        try:
            with Image.open(path) as img:
                return digest(np.asarray(img.convert("RGB")))
        except OSError:
            return None             # unreadable: data_loader skips and reports it later

    if train_uint8 is None:
        train_d = [file_digest(p) for p in train_paths]
        held_d = [file_digest(p) for p in heldout_paths]
    else:
        train_d = [digest(img) for img in train_uint8]
        held_d = [digest(img) for img in heldout_uint8]
    seen = {d: i for i, d in enumerate(train_d) if d is not None}
    same = [(i, seen[d]) for i, d in enumerate(held_d) if d in seen]
    if same:
        i, j = same[0]
        named = len(held_d) == len(heldout_paths) and len(train_d) == len(train_paths)
        example = f", e.g. {heldout_paths[i]} and {train_paths[j]}" if named else ""
        raise CopyingError(f"{len(same)} {what[1]} image(s) have the same pixels as a "
                           f"{what[0]} image{example}; remove the duplicates from the "
                           "held-out set")
