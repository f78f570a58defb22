"""Image-quality metrics measured during training, and the best checkpoint they pick.

Every `eval_every` iterations the generator draws a fixed set of latents (the same at every
evaluation, so scores compare across time); SWD against a fixed random subset of the real
images is always computed, FID too when InceptionV3 weights are on the machine. The best
score so far lives in a variable the run's checkpoint holds, so a resumed run keeps it.

When the run has held-out images (the images of its data that --exclude left out, e.g. a
classifier split's validation and test folds), the data-copying test (skingan.copying) runs
too: C_T and the near-copy fraction of the same fakes against the training images, logged
beside SWD. A generator with C_T below copying.COPYING_THRESHOLD copies its training images
and is never saved as the best one (QualityTracker.is_new_best, beats_best).
"""
import math
import os

import numpy as np
import tensorflow as tf

from skingan import copying, metrics
from skingan.conditional import with_labels
from skingan.families import STREAM_EVAL_LATENTS, STREAM_EVAL_REALS, numpy_normal
from skingan.fileio import append_csv_rows
from skingan.monitoring import restart_csv


def beats_best(score, best, c_t=None, threshold=copying.COPYING_THRESHOLD):
    """The rule for generator_best.keras: a lower score (SWD or FID) than the best so far,
    from a generator that does not copy its training images (C_T >= threshold; C_T None
    when the run has no held-out images to test with)."""
    return score < best and (c_t is None or c_t >= threshold)


class QualityTracker:
    def __init__(self, real_uint8, num_images, seed, results_dir, fid=False,
                 inception_weights=None, log=print, class_ids=None, heldout_uint8=None,
                 cells=copying.DEFAULT_CELLS):
        draw = np.random.RandomState([seed, STREAM_EVAL_REALS])
        n = min(num_images, len(real_uint8))
        chosen = np.sort(draw.choice(len(real_uint8), n, replace=False))
        self.real = np.asarray(real_uint8[chosen])
        # A conditional run's fakes take the classes of the chosen reals in turn, so both
        # sets hold the classes in the same proportions.
        self.fake_labels = None if class_ids is None else \
            np.asarray(class_ids, np.int32)[chosen][np.arange(num_images) % n]
        self.num_images = num_images
        self.seed = seed
        self.log = log
        # the best score so far (lower is better for both; +inf until the first evaluation)
        # and the step it was scored at (-1 until then): both in the run's checkpoint
        self.best = tf.Variable(math.inf, dtype=tf.float64, trainable=False)
        self.best_step = tf.Variable(-1, dtype=tf.int64, trainable=False)
        self.feature_model = self.real_features = None
        if fid:
            try:
                self.feature_model = metrics.load_inception(inception_weights, log)
                self.real_features = metrics.extract_features(
                    self.real, self.feature_model, log=log, label="real features")
            except metrics.MissingWeightsError as err:
                if inception_weights:
                    raise
                log(f"FID during training is off: {err}. Scoring by SWD instead.")
                self.feature_model = None
        self.metric = "fid" if self.feature_model is not None else "swd"
        self.path = os.path.join(results_dir, "metrics.csv")
        self.copying = None
        if heldout_uint8 is not None:
            self.copying = self._copying_setup(np.asarray(real_uint8), heldout_uint8, cells)

    def _copying_setup(self, train_uint8, heldout_uint8, cells):
        """The fixed parts of the data-copying test: training and held-out features and the
        k-means cells (fitted once, seeded; the most cells up to `cells` the held-out set
        fills). None, with one line, if not even one cell works: training goes on, scored
        without it."""
        if self.feature_model is not None:
            feature = copying.INCEPTION_FEATURE
            train, held = (metrics.extract_features(x, self.feature_model, log=None)
                           for x in (train_uint8, heldout_uint8))
            project = lambda x: metrics.extract_features(x, self.feature_model, log=None)  # noqa: E731
        else:
            feature = copying.PIXEL_FEATURE
            stats = copying.pixel_stats(train_uint8)
            train, held = (copying.pixel_project(x, stats) for x in (train_uint8, heldout_uint8))
            project = lambda x: copying.pixel_project(x, stats)  # noqa: E731
        # The most cells up to `cells` that the held-out set fills (train.py has no --cells).
        for k in range(cells, 0, -1):
            try:
                copying.check_sizes(len(train), len(held), k)
                kmeans = copying.fit_cells(train, k, self.seed)
                copying.check_cells(kmeans, train, held)
                cells = k
                break
            except copying.CopyingError as err:
                reason = err
        else:
            self.log(f"C_T during training is off: {reason}")
            return None
        self.log(f"data-copying test during training: {len(train)} training and {len(held)} "
                 f"held-out images, {cells} cells, feature {feature}")
        return dict(train=train, heldout=held, kmeans=kmeans, cells=cells, project=project,
                    feature=feature)

    def fields(self):
        return ["step", "swd", "fid"] + (["c_t", "near_copies"] if self.copying else [])

    def start_log(self, resume_step):
        """Begin metrics.csv for a run at `resume_step` (after the checkpoint is restored):
        scores of the steps up to it are kept, later ones dropped."""
        restart_csv(self.path, self.fields(), resume_step)

    def copying_scores(self, fakes):
        """(C_T, near-copy fraction) of uint8 fakes; (None, None) when no cell holds enough
        of them (a generator collapsed into one corner of the data)."""
        c = self.copying
        generated = c["project"](fakes)
        try:
            result = copying.data_copying_test(c["train"], c["heldout"], generated, c["cells"],
                                               kmeans=c["kmeans"])
        except copying.CopyingError as err:
            self.log(f"C_T not computed: {err}")
            return None, None
        near = copying.nearest_copies(c["train"], c["heldout"], generated)
        return result["C_T"], near["near_copy_fraction"]

    def evaluate(self, step, generate, draw_inputs):
        """Score the generator on the evaluation's fixed latents. generate(inputs) -> uint8
        images; draw_inputs(normal, n) -> the generator's inputs (Family.draw_inputs).
        Returns (scores dict, improved: whether is_new_best says so). Recording the new
        best (record_best) is the caller's, once every worker agrees."""
        fakes = generate(with_labels(
            draw_inputs(numpy_normal([self.seed, STREAM_EVAL_LATENTS]), self.num_images),
            self.fake_labels))
        scores = {"swd": metrics.swd(self.real, fakes, seed=self.seed)["average"], "fid": None}
        if self.feature_model is not None:
            fake_features = metrics.extract_features(fakes, self.feature_model, log=None)
            scores["fid"] = metrics.fid_from_features(self.real_features, fake_features)
        if self.copying:
            scores["c_t"], scores["near_copies"] = self.copying_scores(fakes)
        improved = self.is_new_best(scores)
        c_t = scores.get("c_t")
        if c_t is not None and c_t < copying.COPYING_THRESHOLD:
            self.log(f"warning: C_T {c_t:.2f} at step {step} is below "
                     f"{copying.COPYING_THRESHOLD:g}: the generator copies its training images "
                     "(nearer to them than held-out images are); generator_best.keras keeps "
                     "the best generator that does not")
        row = [step] + ["" if scores.get(k) is None else f"{scores[k]:.6g}"
                        for k in self.fields()[1:]]
        append_csv_rows(self.path, [row])                             # a whole row
        return scores, improved

    def is_new_best(self, scores):
        """The rule for 'best': whether `scores` (as evaluate computes them) beat the best
        so far. Here: a lower score of the tracked metric (FID with weights, else SWD) from a
        generator that does not copy its training images (beats_best)."""
        return beats_best(scores[self.metric], float(self.best.numpy()), scores.get("c_t"))

    def record_best(self, step, scores):
        """Make `scores`, scored at `step`, the best so far (the checkpoint keeps both)."""
        self.best.assign(scores[self.metric])
        self.best_step.assign(step)
