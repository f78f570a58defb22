"""Metrics of one test prediction, and their summaries over repeats.

Per prediction, with the ISIC challenge's own scoring code (``isic-challenge-scoring``) where it
has the metric and scikit-learn otherwise:

- balanced multiclass accuracy, the ISIC 2018 Task 3 ranking metric: the mean over classes of
  the per-class sensitivity (isic_challenge_scoring.metrics.balanced_multiclass_accuracy);
- per class c, one-vs-rest on the predicted class (argmax): sensitivity TP / (TP + FN),
  specificity TN / (TN + FP) and F1 = 2 TP / (2 TP + FP + FN) (ISIC's binary confusion matrix
  and its binary_sensitivity, binary_specificity, binary_dice), and AUC of the class
  probability (ISIC's auc, i.e. scikit-learn's roc_auc_score);
- accuracy, macro F1 and the confusion matrix (scikit-learn).

The predicted class is the argmax of the probabilities, so the per-class sensitivities
average to the balanced accuracy. (ISIC's ClassificationScore instead thresholds each class
probability at 0.5, which suits its multi-label tasks but not a softmax.)

Over K repeats each metric is reported as its mean with a 95 % Student-t interval, mean +-
h, h = t(0.975, K - 1) * sd / sqrt(K) (undefined for K = 1), clipped to the values the metric
can take: [0, 1] for a metric, [-1, 1] for a difference of two. Arms are compared by paired
differences: repeat r of every arm uses the same seed, so d_r = metric(arm, r) -
metric(baseline, r) and the interval is that of the d_r.

The verdict on a listed class (``verdict``) says how much it rests on. A sensitivity on n test
images moves in steps of 1/n, and a mean difference smaller than the interval's half-width h
leaves 0 inside the interval, so the smallest difference this design can resolve is

    detectable = max(1 / n, h)          (h unclipped; docs/classify.md)

helps / hurts: the (clipped) interval of the difference lies above / below 0.
no measurable effect: it holds 0, and detectable <= WORTHWHILE (0.05): any effect is smaller
    than a difference worth having.
undetermined: it holds 0 and detectable > WORTHWHILE: the test images (1/n > WORTHWHILE)
    and/or the repeats (h > WORTHWHILE) are too few to tell; or there is one repeat only.
"""
import math

import numpy as np

CONFIDENCE = 0.95
# The smallest change in a class's sensitivity worth resolving: 5 percentage points. GAN
# augmentation papers report gains of a few to ~10 points on rare classes.
WORTHWHILE = 0.05
METRIC_BOUNDS = (0.0, 1.0)            # every metric here is a proportion or an AUC
DIFFERENCE_BOUNDS = (-1.0, 1.0)       # a difference of two of them
OVERALL = ("balanced_accuracy", "accuracy", "macro_f1")
PER_CLASS = ("sensitivity", "specificity", "f1", "auc")


def score(y_true, probabilities, class_names):
    """Metrics of one prediction: {'balanced_accuracy', 'accuracy', 'macro_f1',
    'per_class': {class: {sensitivity, specificity, f1, auc}}, 'confusion': C x C list
    (rows true class, columns predicted)}. y_true: int (N,); probabilities: (N, C)."""
    import pandas as pd
    import sklearn.metrics
    from isic_challenge_scoring import metrics as isic
    from isic_challenge_scoring.confusion import create_binary_confusion_matrix

    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities, np.float64)
    num_classes = len(class_names)
    y_pred = probabilities.argmax(axis=1)
    eye = np.eye(num_classes)
    truth = pd.DataFrame(eye[y_true], columns=class_names)       # one-hot (N, C)
    predicted = pd.DataFrame(eye[y_pred], columns=class_names)   # one-hot (N, C)
    weights = pd.Series(np.ones(len(y_true)))
    per_class = {}
    for k, name in enumerate(class_names):
        cm = create_binary_confusion_matrix(y_true == k, y_pred == k)
        per_class[name] = {
            "sensitivity": float(isic.binary_sensitivity(cm)),
            "specificity": float(isic.binary_specificity(cm)),
            "f1": float(isic.binary_dice(cm)),
            "auc": float(isic.auc(truth[name], pd.Series(probabilities[:, k]), weights)),
        }
    labels = np.arange(num_classes)
    return {
        "balanced_accuracy": float(isic.balanced_multiclass_accuracy(truth, predicted, weights)),
        "accuracy": float(sklearn.metrics.accuracy_score(y_true, y_pred)),
        "macro_f1": float(sklearn.metrics.f1_score(y_true, y_pred, labels=labels,
                                                   average="macro", zero_division=0)),
        "per_class": per_class,
        "confusion": sklearn.metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def flatten(scores):
    """One score dict -> {metric key: value}, keys 'balanced_accuracy' or 'sensitivity/df'."""
    flat = {key: scores[key] for key in OVERALL}
    for name, values in scores["per_class"].items():
        for metric in PER_CLASS:
            flat[f"{metric}/{name}"] = values[metric]
    return flat


def interval(values, confidence=CONFIDENCE, bounds=None):
    """{'mean', 'low', 'high', 'half_width', 'n'}: a Student-t interval, mean +- half_width,
    with low and high clipped to ``bounds`` (half_width is not); low = high = half_width =
    None for n = 1."""
    import scipy.stats
    values = np.asarray(values, np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return {"mean": mean, "low": None, "high": None, "half_width": None, "n": len(values)}
    sem = float(scipy.stats.sem(values))
    # identical values: scipy would return nan
    half = 0.0 if sem == 0.0 else float(scipy.stats.t.ppf(0.5 + confidence / 2,
                                                          len(values) - 1) * sem)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"mean": mean, "low": float(low), "high": float(high), "half_width": half,
            "n": len(values)}


def summarise(per_repeat):
    """[{metric: value} per repeat] -> {metric: interval in [0, 1]}."""
    return {key: interval([r[key] for r in per_repeat], bounds=METRIC_BOUNDS)
            for key in per_repeat[0]}


def paired_differences(arm_repeats, baseline_repeats):
    """{metric: interval of arm - baseline over repeats, in [-1, 1]} (paired by seed)."""
    return {key: interval([a[key] - b[key] for a, b in zip(arm_repeats, baseline_repeats)],
                          bounds=DIFFERENCE_BOUNDS)
            for key in arm_repeats[0]}


def detectable(difference, n_test):
    """The smallest sensitivity difference these repeats and ``n_test`` test images can
    resolve: max(1 / n_test, the interval's half-width); None with one repeat."""
    if difference["half_width"] is None or math.isnan(difference["half_width"]):
        return None
    return max(1.0 / n_test, difference["half_width"])


def verdict(difference, n_test, worthwhile=WORTHWHILE):
    """The verdict on a paired sensitivity difference measured on ``n_test`` test images of
    the class (rule in the module docstring): 'helps', 'hurts', 'no measurable effect', or
    'undetermined: <why>'."""
    if n_test == 0:
        return "undetermined: the class has no test images"
    smallest = detectable(difference, n_test)
    if smallest is None:
        return "undetermined: one repeat gives no interval (run --repeats 3 or more)"
    if difference["low"] > 0:
        return "helps"
    if difference["high"] < 0:
        return "hurts"
    if smallest <= worthwhile:
        return "no measurable effect"
    reasons = []
    if 1.0 / n_test > worthwhile:
        reasons.append(f"test images ({n_test})")
    if difference["half_width"] > worthwhile:
        reasons.append(f"repeats ({difference['n']})")
    what = "any difference" if smallest >= 1 else f"less than {smallest:+.3f}"
    return f"undetermined: too few {' and '.join(reasons)} to detect {what}"
