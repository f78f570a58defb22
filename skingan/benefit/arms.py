"""What each arm of the experiment trains on. Everything here sees the training fold only:
validation and test images never pass through this module, so synthetic images cannot
reach them.

- ``real``: the real training images;
- ``oversample``: the real training images, plus the listed classes' real training images
  repeated until each listed class has as many images as in the synthetic arm (the baseline
  an augmentation has to beat);
- a synthetic arm (``synthetic``, or any name): the real training images plus synthetic ones.
"""
import dataclasses

import numpy as np

REAL, OVERSAMPLE, SYNTHETIC = "real", "oversample", "synthetic"


@dataclasses.dataclass
class TrainingSet:
    images: np.ndarray     # uint8 (M, R, R, 3)
    labels: np.ndarray     # int (M,) class indices
    origin: np.ndarray     # str (M,): 'real', 'repeat' (oversampling copy) or 'synthetic'

    def counts(self, class_names):
        """{class: {origin: number of images}} for the report."""
        return {name: {o: int(np.sum((self.labels == k) & (self.origin == o)))
                       for o in ("real", "repeat", "synthetic")}
                for k, name in enumerate(class_names)}


def default_additions(train_labels, listed, num_classes):
    """{class index: images to add} raising each listed class to the median training-fold
    class count (nothing for a class already at or above it)."""
    counts = np.bincount(train_labels, minlength=num_classes)
    median = int(np.median(counts))
    return {k: max(0, median - int(counts[k])) for k in listed}


def oversample_indices(train_labels, class_index, n_extra, seed):
    """Indices of ``n_extra`` repeats of one class's real training images: cycle through a
    seeded permutation, so every image is repeated floor or ceil of n_extra / n_class times."""
    members = np.flatnonzero(train_labels == class_index)
    order = np.random.default_rng([seed, class_index]).permutation(members)
    return order[np.arange(n_extra) % len(order)]


def real_arm(train_images, train_labels):
    return TrainingSet(train_images, train_labels,
                       np.full(len(train_labels), "real", dtype=object))


def oversample_arm(train_images, train_labels, extra_counts, seed):
    """extra_counts: {class index: number of repeats to add} (the synthetic arm's additions)."""
    extra = np.concatenate([oversample_indices(train_labels, k, n, seed)
                            for k, n in sorted(extra_counts.items())] or [np.zeros(0, int)])
    extra = extra.astype(np.int64)
    return TrainingSet(np.concatenate([train_images, train_images[extra]]),
                       np.concatenate([train_labels, train_labels[extra]]),
                       np.concatenate([np.full(len(train_labels), "real", dtype=object),
                                       np.full(len(extra), "repeat", dtype=object)]))


def synthetic_arm(train_images, train_labels, synthetic):
    """synthetic: {class index: uint8 images (s, R, R, 3)} added to the training images."""
    parts = [images for _, images in sorted(synthetic.items())]
    labels = [np.full(len(images), k, train_labels.dtype)
              for k, images in sorted(synthetic.items())]
    n_synthetic = sum(len(p) for p in parts)
    return TrainingSet(np.concatenate([train_images] + parts),
                       np.concatenate([train_labels] + labels),
                       np.concatenate([np.full(len(train_labels), "real", dtype=object),
                                       np.full(n_synthetic, "synthetic", dtype=object)]))


def build_arm(name, train_images, train_labels, synthetic_arms, seed):
    """The TrainingSet of arm ``name``. synthetic_arms: {arm name: {class index: images}};
    the oversample arm repeats as many images per class as the first synthetic arm adds."""
    if name == REAL:
        return real_arm(train_images, train_labels)
    if name == OVERSAMPLE:
        first = next(iter(synthetic_arms.values()))
        return oversample_arm(train_images, train_labels,
                              {k: len(images) for k, images in first.items()}, seed)
    return synthetic_arm(train_images, train_labels, synthetic_arms[name])
