"""The image pipeline shared by both GANs: find images, decode them once, stream batches.

Three steps, each usable alone:

1. ``find_images(data, labels, class_name)`` (``skingan/data/find.py``) works out the layout
   of ``data`` (ISIC 2018 or HAM10000 label CSV, class folders, or a plain folder) and returns
   the sorted image paths of one class (an ``ImageSource``).
2. ``load_images(source, resolution, crop)`` (``skingan/data/decode.py``) decodes every image
   once, in a thread pool, to RGB at ``resolution`` x ``resolution`` (antialiased Lanczos, or
   ``crop="center"``): one uint8 array ``(N, R, R, 3)``, cached as a checksummed ``.npy``
   file with ``cache_dir``.
3. ``make_dataset(images, batch_size, seed, ...)`` is the infinite training stream of float32
   NHWC batches in ``value_range``. The batch for step ``s`` is a pure function of
   ``(seed, s)``: sample ``j`` of it has global index ``i = s * B + j``, comes from epoch
   ``i // N`` at position ``i % N`` of that epoch's permutation, and its flips/rotation are
   drawn from a hash of ``(seed, i)``. So ``start_step=k`` starts exactly where a stream from
   step 0 would be after ``k`` batches, at no cost, and batches straddle epoch boundaries
   (every batch is full, even when N < B).

``load_data`` does 1 and 2 and returns the images with a description dict for ``config.json``;
``load_labelled_data`` does the same for several classes at once (conditional training), from
``list_labelled_images`` (``skingan/data/labelled.py``), and returns each image's class too.
Bad input raises ``DataError`` (a ``UserError``) with a one-line message. The finding,
decoding and listing calls are re-exported here, so ``data_loader.find_images`` etc. work.
"""
import atexit
import contextlib
import functools
import os
import threading
import time

import numpy as np

from skingan.data.decode import (CACHE_VERSION, CROP_MODES, _load, decode_image,  # noqa: F401
                                 load_images)
from skingan.data.find import (IMAGE_EXTENSIONS, SHOW_FIRST, DataError,  # noqa: F401
                               ImageSource, _first, _match_class, _walk_images,
                               exclude_images, find_images, image_id, images_in_folder,
                               parse_class_list, read_exclusions)
from skingan.data.labelled import (LESION_GROUPINGS_CSV, LabelledImage,  # noqa: F401
                                   list_labelled_images)


# ----------------------------------------------------------------------------------------------
# Finding + decoding in one call
# ----------------------------------------------------------------------------------------------

def load_data(data, labels=None, class_name=None, resolution=64, crop="resize",
              cache_dir=None, log=print, exclude=None):
    """find_images + load_images. Returns (images uint8 (N, R, R, 3), description dict).

    exclude: a CSV of images to leave out (see ``read_exclusions``), e.g. a classifier's
    validation and test folds. The description's ``image_ids`` lists the ids of the images
    loaded, in the order of ``images``.
    """
    source = find_images(data, labels, class_name)
    excluded = 0
    if exclude is not None:
        source, excluded = exclude_images(source, read_exclusions(exclude))
    log(f"data: {source.describe()}" + (f"; {excluded} excluded by {exclude}"
                                        if exclude is not None else ""))
    images, skipped = _load(source, resolution, crop, cache_dir, log)
    unreadable = {p for p, _ in skipped}
    description = {
        "path": os.path.abspath(os.fspath(data)),
        "labels": source.labels,
        "layout": source.layout,
        "class": source.class_name,
        "num_images": int(len(images)),
        "num_skipped": len(skipped),
        "resolution": int(resolution),
        "crop": crop,
        "num_excluded": excluded,
        "image_ids": [image_id(p) for p in source.paths if p not in unreadable],
    }
    log(f"using {len(images)} images at {resolution}x{resolution}"
        + (f" ({len(skipped)} skipped)" if skipped else ""))
    return images, description


def load_labelled_data(data, labels=None, classes="all", resolution=64, crop="resize",
                       cache_dir=None, log=print, exclude=None):
    """Every image of several classes with its class, for conditional training.

    classes: 'all' (every class, in case-insensitive alphabetical order) or a list of class
    names (matched case-insensitively, kept in the order given): the class index of an
    image is its class's position in this order. Layouts as for ``list_labelled_images``.
    Returns (images uint8 (N, R, R, 3), class indices int32 (N,), description dict); the
    description adds ``classes`` (names as spelled in the data, in index order) and
    ``class_counts`` (images loaded per class) to what ``load_data`` describes.
    """
    records = list_labelled_images(data, labels)
    present = sorted({r.class_name for r in records}, key=str.lower)
    where = "the labels of " + os.path.abspath(os.fspath(data))
    if classes == "all":
        names = present
    else:
        names = [_match_class(c, present, where) for c in classes]
    if len(names) < 2:
        raise DataError(f"conditional training needs two or more classes; {where} has "
                        f"{', '.join(present) or 'none'}")
    index = {name: k for k, name in enumerate(names)}
    records = [r for r in records if r.class_name in index]
    records.sort(key=lambda r: (index[r.class_name], r.image_id))
    source = ImageSource([r.path for r in records], "labelled", ",".join(names),
                         os.path.abspath(os.fspath(data)), labels)
    excluded = 0
    if exclude is not None:
        source, excluded = exclude_images(source, read_exclusions(exclude))
        kept = set(source.paths)
        records = [r for r in records if r.path in kept]
    empty = [n for n in names if not any(r.class_name == n for r in records)]
    if empty:
        raise DataError(f"no images left of class {', '.join(empty)}"
                        + (f" after the exclusions in {exclude}" if exclude else ""))
    log(f"data: {len(records)} images of {len(names)} classes in {source.root}"
        + (f"; {excluded} excluded by {exclude}" if exclude is not None else ""))
    images, skipped = _load(source, resolution, crop, cache_dir, log)
    unreadable = {p for p, _ in skipped}
    kept = [r for r in records if r.path not in unreadable]
    class_ids = np.array([index[r.class_name] for r in kept], np.int32)
    counts = [int(np.sum(class_ids == k)) for k in range(len(names))]
    if 0 in counts:
        raise DataError(f"no readable images of class {names[counts.index(0)]}")
    description = {
        "path": os.path.abspath(os.fspath(data)), "labels": labels and os.path.abspath(labels),
        "layout": "labelled", "class": ",".join(names), "classes": names,
        "class_counts": counts, "num_images": int(len(images)), "num_skipped": len(skipped),
        "resolution": int(resolution), "crop": crop, "num_excluded": excluded,
        "image_ids": [r.image_id for r in kept],
    }
    log(f"using {len(images)} images at {resolution}x{resolution}: "
        + ", ".join(f"{n} {c}" for n, c in zip(names, counts))
        + (f" ({len(skipped)} skipped)" if skipped else ""))
    return images, class_ids, description


# ----------------------------------------------------------------------------------------------
# 3. The training stream
# ----------------------------------------------------------------------------------------------

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x):
    """SplitMix64 finaliser: a bijective 64-bit mixer (Steele et al. 2014), vectorised, uint64."""
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & _M64
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
    return x ^ (x >> np.uint64(31))


def _hash(*parts):
    """Stateless random uint64 from integer parts (scalars or arrays, broadcast).
    The same parts give the same number on any machine and numpy version."""
    h = np.uint64(0)
    with np.errstate(over="ignore"):
        for part in parts:
            h = _splitmix64(h ^ np.asarray(part).astype(np.uint64))
    return h


_PERMUTATION, _AUGMENT, _CLASS, _MEMBER = 1, 2, 3, 4   # stream tags: no two uses share numbers
CLASS_BALANCES = ("data", "uniform", "sqrt")


@functools.lru_cache(maxsize=8)
def _epoch_permutation(seed, epoch, n):
    """The order of the n images in ``epoch``: argsort of n random keys hash(seed, epoch, k)."""
    keys = _hash(_PERMUTATION, seed, epoch, np.arange(n, dtype=np.uint64))
    perm = np.argsort(keys, kind="stable")
    perm.flags.writeable = False
    return perm


def batch_indices(step, batch_size, n, seed):
    """Global sample indices i = step*B + j -> (image indices (B,), global indices (B,))."""
    i = np.int64(step) * batch_size + np.arange(batch_size, dtype=np.int64)
    epoch, position = i // n, i % n
    index = np.empty(batch_size, np.int64)
    for e in np.unique(epoch):                 # a batch spans one epoch, two, or more if B > N
        mask = epoch == e
        index[mask] = _epoch_permutation(seed, int(e), n)[position[mask]]
    return index, i


def iterations_per_epoch(n, batch_size):
    """Batches in one epoch when the last, partial batch is kept: ceil(n / batch_size)."""
    return -(-int(n) // int(batch_size))


def epoch_batch_indices(step, batch_size, n, seed):
    """Like batch_indices, but epochs never share a batch: step s is batch b = s mod K of
    epoch e = s div K, K = ceil(N / B), holding positions b*B .. min((b+1)*B, N) - 1 of
    that epoch's permutation, so the epoch's last batch is partial (N mod B images) as with
    a PyTorch DataLoader without drop_last. Global indices e*N + position stay unique."""
    per_epoch = iterations_per_epoch(n, batch_size)
    epoch, b = divmod(int(step), per_epoch)
    position = np.arange(b * batch_size, min((b + 1) * batch_size, n), dtype=np.int64)
    return _epoch_permutation(seed, epoch, n)[position], np.int64(epoch) * n + position


def class_probabilities(counts, balance="data"):
    """How often each class is drawn, from its image counts n_c: p_c proportional to n_c
    ('data', as the images come), 1 ('uniform', every class equally often) or sqrt(n_c)
    ('sqrt', in between). float64 (K,), summing to 1."""
    if balance not in CLASS_BALANCES:
        raise DataError(f"unknown class balance {balance!r}; choose one of "
                        f"{', '.join(CLASS_BALANCES)}")
    counts = np.asarray(counts, np.float64)
    weights = {"data": counts, "uniform": np.ones_like(counts), "sqrt": np.sqrt(counts)}[balance]
    return weights / weights.sum()


def _unit_uniform(bits):
    """uint64 random bits -> float64 in [0, 1) from their top 53 bits."""
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


class ClassSampler:
    """The images' classes (conditional training) and how often each class is drawn,
    worked out once per stream; ``images`` picks a batch's images from them.

    With a balance other than 'data', sample i's class is c with probability p_c (inverse
    CDF of u = hash(seed, i)) and its image a uniform draw among that class's images (with
    replacement, as a weighted sampler does): a pure function of (seed, i)."""

    def __init__(self, class_ids, balance="data"):
        self.class_ids = np.asarray(class_ids, np.int32)                    # (N,)
        self.balance = balance
        self.counts = np.bincount(self.class_ids)                            # (K,)
        self.cdf = np.cumsum(class_probabilities(self.counts, balance))      # checks balance
        # the images sorted by class: class k's are by_class[start[k] : start[k] + counts[k]]
        self.by_class = np.argsort(self.class_ids, kind="stable")
        self.start = np.cumsum(self.counts) - self.counts

    def images(self, index, global_index, seed):
        """The images of samples `global_index`: `index` (the data order) for 'data',
        else class-balanced draws."""
        if self.balance == "data":
            return index
        u = _unit_uniform(_hash(_CLASS, seed, global_index))
        classes = np.minimum(np.searchsorted(self.cdf, u, side="right"), len(self.counts) - 1)
        pick = _hash(_MEMBER, seed, global_index) % self.counts[classes].astype(np.uint64)
        return self.by_class[self.start[classes] + pick.astype(np.int64)]


def augment_flags(global_index, seed):
    """Per-sample augmentation bits from hash(seed, i): (hflip, vflip, quarter turns 0..3)."""
    bits = _hash(_AUGMENT, seed, global_index)
    hflip = (bits & np.uint64(1)) == 1
    vflip = ((bits >> np.uint64(1)) & np.uint64(1)) == 1
    turns = ((bits >> np.uint64(2)) & np.uint64(3)).astype(np.int64)
    return hflip, vflip, turns


def _pixels(images):
    """View a uint8 (..., 3) array as (...) items of 3 bytes, one per RGB pixel, without
    copying: flips and rotations then move whole pixels, several times faster than moving
    single bytes with stride -3."""
    return images.view(np.dtype((np.void, 3))).reshape(images.shape[:-1])


def make_batch(images, step, batch_size, seed=0, hflip=True, vflip=False, rot90=False,
               partial_batches=False, classes=None):
    """The uint8 batch (B, R, R, 3) for ``step``, in numpy. ``make_dataset`` streams exactly
    these, converted to float. Augmentations, applied in this order to sample j: mirror
    left-right, mirror up-down, rotate by 90 degrees x turns (counter-clockwise).
    partial_batches: epoch by epoch, the last batch partial (epoch_batch_indices).
    classes (a ClassSampler): return (batch, the batch's class indices (B,) int32) instead,
    the images drawn with its balance at the same global indices, so the batch sizes and
    the augmentation draws stay those of the data order."""
    indices = epoch_batch_indices if partial_batches else batch_indices
    index, i = indices(step, batch_size, len(images), seed)
    if classes is not None:
        index = classes.images(index, i, seed)
    do_h, do_v, turns = augment_flags(i, seed)
    src = _pixels(images)                                   # (N, R, R) pixel items
    batch = np.empty((len(index),) + images.shape[1:], np.uint8)
    dst = _pixels(batch)                                    # (B, R, R) view of batch
    for j in range(len(index)):
        img = src[index[j]]                                 # (R, R) view, nothing copied yet
        if hflip and do_h[j]:
            img = img[:, ::-1]                              # mirror left-right (W axis)
        if vflip and do_v[j]:
            img = img[::-1]                                 # mirror up-down (H axis)
        if rot90 and turns[j]:
            img = np.rot90(img, int(turns[j]))
        dst[j] = img                                        # the one copy per image
    if classes is not None:
        return batch, classes.class_ids[index]
    return batch


class ExitGate:
    """Lets the stream's Python calls finish before the interpreter shuts down.

    tf.data runs ``numpy_batch`` (in ``make_dataset``) on its own threads: the parallel
    map's, the prefetch's and, under a tf.distribute strategy, the multi-device iterator's,
    which keep filling their buffers after the last batch was taken. Once CPython starts
    finalizing, a thread that asks for the GIL is ended on the spot; a call caught in
    flight then never returns, and the iterator's destructor, run by the last garbage
    collection of a script that still holds an iterator, waits for it forever: the script
    hangs after its last line (docs/bench-hang.md). ``close`` runs from ``atexit``, while
    the interpreter is still whole, and waits until no call is in flight and none has
    started for ``quiet_s`` (the buffers are full: nothing asks for more), at most
    ``limit_s``."""

    def __init__(self, quiet_s=0.25, limit_s=30.0):
        self.quiet_s, self.limit_s = quiet_s, limit_s
        self._lock = threading.Lock()
        self._busy, self._last = 0, 0.0

    @contextlib.contextmanager
    def call(self):
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
                self._last = time.monotonic()

    def close(self):
        """Wait (at most limit_s) until the stream's Python calls have gone quiet."""
        deadline = time.monotonic() + self.limit_s
        while time.monotonic() < deadline:
            with self._lock:
                if self._busy == 0 and time.monotonic() - self._last >= self.quiet_s:
                    return True
            time.sleep(0.01)          # releases the GIL: the calls in flight can finish
        return False


_exit_gate = None


def exit_gate():
    """The process's one ExitGate, registered with atexit after TensorFlow's own exit
    handlers, so it runs before them (atexit runs the last registered first)."""
    global _exit_gate
    if _exit_gate is None:
        _exit_gate = ExitGate()
        atexit.register(_exit_gate.close)
    return _exit_gate


def make_dataset(images, batch_size, seed=0, value_range=(0.0, 1.0), hflip=True, vflip=False,
                 rot90=False, start_step=0, partial_batches=False, class_ids=None,
                 class_balance="data"):
    """Infinite tf.data stream of float32 batches (batch_size, R, R, 3) in ``value_range``.

    images: uint8 array (N, R, R, 3), in memory or memory-mapped. value_range: (0, 1) for a
    sigmoid generator (SL-StyleGAN), (-1, 1) for tanh (DCGAN). hflip (default on), vflip,
    rot90: random per-sample augmentations (dermoscopy has no canonical orientation).

    Element k of the stream is the batch of step ``start_step + k``, a pure function of
    (seed, step) (see the module docstring), so resuming at step s with ``start_step=s``
    continues the exact stream. Every batch is full (batches straddle epochs), so no
    remainder is ever dropped. Works with ``strategy.experimental_distribute_dataset``
    (the batch size is static, so the global batch is split across replicas).

    partial_batches=True is the DCGAN authors' epoch loop instead: each epoch's images in
    a fresh order, the last batch of an epoch partial, never straddling (see
    epoch_batch_indices); the batch dimension is then None.

    class_ids (N,) int (conditional training): the stream yields (images, class indices
    (B,) int32) pairs, each label aligned with its image, and ``class_balance`` says how
    often each class is drawn (class_probabilities, ClassSampler).
    """
    import tensorflow as tf    # imported here so the finding/decoding half needs no TensorFlow

    images = images if isinstance(images, np.ndarray) else np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2] \
            or images.dtype != np.uint8:
        raise DataError(f"images must be a uint8 array (N, R, R, 3), got {images.dtype} "
                        f"{images.shape}")
    if not images.flags.c_contiguous:
        images = np.ascontiguousarray(images)
    if len(images) == 0:
        raise DataError("no images to make a dataset from")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise DataError(f"value_range must be (low, high) with low < high, got {value_range!r}")
    if int(start_step) < 0:
        raise DataError(f"start_step must be >= 0, got {start_step}")
    batch_size, seed = int(batch_size), int(seed)
    shape = (None if partial_batches else batch_size,) + images.shape[1:]

    classes = None
    if class_ids is not None:
        classes = ClassSampler(class_ids, class_balance)
        if classes.class_ids.shape != (len(images),):
            raise DataError(f"class_ids must have one entry per image, got "
                            f"{classes.class_ids.shape} for {len(images)} images")

    gate = exit_gate()

    def numpy_batch(step):
        with gate.call():
            return make_batch(images, int(step), batch_size, seed, hflip, vflip, rot90,
                              partial_batches, classes)

    def to_float(step):
        # numpy_function keeps the (possibly multi-GB) array out of the graph: no 2 GB
        # constant limit, and a memory-mapped cache is read page by page.
        if classes is None:
            batch = tf.numpy_function(numpy_batch, [step], tf.uint8, stateful=False)
        else:
            batch, labels = tf.numpy_function(numpy_batch, [step], [tf.uint8, tf.int32],
                                              stateful=False)
            labels.set_shape(shape[:1])
        batch.set_shape(shape)
        # uint8 [0, 255] -> float32 [lo, hi]: x * (hi - lo) / 255 + lo.
        batch = tf.cast(batch, tf.float32) * ((hi - lo) / 255.0) + lo
        return batch if classes is None else (batch, labels)

    steps = tf.data.Dataset.counter(start=int(start_step), dtype=tf.int64)
    return (steps.map(to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE))
