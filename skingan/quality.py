"""Image-quality metrics measured during training, and the best checkpoint they pick.

Every `eval_every` iterations the generator draws a fixed set of latents (the same at every
evaluation, so scores compare across time); SWD against a fixed random subset of the real
images is always computed, FID too when InceptionV3 weights are on the machine. The best
score so far lives in a variable the run's checkpoint holds, so a resumed run keeps it.
"""
import csv
import math
import os

import numpy as np
import tensorflow as tf

from skingan import metrics
from skingan.conditional import with_labels
from skingan.families import STREAM_EVAL_LATENTS, STREAM_EVAL_REALS, numpy_normal
from skingan.monitoring import restart_csv


class QualityTracker:
    def __init__(self, real_uint8, num_images, seed, results_dir, fid=False,
                 inception_weights=None, log=print, class_ids=None):
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
                self.feature_model = metrics.load_inception(inception_weights)
                self.real_features = metrics.extract_features(
                    self.real, self.feature_model, log=log, label="real features")
            except metrics.MissingWeightsError as err:
                if inception_weights:
                    raise
                log(f"FID during training is off: {err}. Scoring by SWD instead.")
                self.feature_model = None
        self.metric = "fid" if self.feature_model is not None else "swd"
        self.path = os.path.join(results_dir, "metrics.csv")

    def start_log(self, resume_step):
        """Begin metrics.csv for a run at `resume_step` (after the checkpoint is restored):
        scores of the steps up to it are kept, later ones dropped."""
        restart_csv(self.path, ["step", "swd", "fid"], resume_step)

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
        improved = self.is_new_best(scores)
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([step, f"{scores['swd']:.6g}",
                                    "" if scores["fid"] is None else f"{scores['fid']:.6g}"])
        return scores, improved

    def is_new_best(self, scores):
        """The rule for 'best': whether `scores` (as evaluate computes them) beat the best
        so far. Here: a lower score of the tracked metric (FID with weights, else SWD)."""
        return scores[self.metric] < float(self.best.numpy())

    def record_best(self, step, scores):
        """Make `scores`, scored at `step`, the best so far (the checkpoint keeps both)."""
        self.best.assign(scores[self.metric])
        self.best_step.assign(step)
