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
t(0.975, K - 1) * sd / sqrt(K) (undefined for K = 1). Arms are compared by paired differences:
repeat r of every arm uses the same seed, so d_r = metric(arm, r) - metric(baseline, r) and
the interval is that of the d_r.
"""
import math

import numpy as np

CONFIDENCE = 0.95
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


def interval(values, confidence=CONFIDENCE):
    """{'mean', 'low', 'high', 'n'} with a Student-t interval; low = high = None for n = 1."""
    import scipy.stats
    values = np.asarray(values, np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return {"mean": mean, "low": None, "high": None, "n": len(values)}
    sem = float(scipy.stats.sem(values))
    if sem == 0.0:                 # identical values: scipy would return nan
        low = high = mean
    else:
        low, high = scipy.stats.t.interval(confidence, len(values) - 1, loc=mean, scale=sem)
    return {"mean": mean, "low": float(low), "high": float(high), "n": len(values)}


def summarise(per_repeat):
    """[{metric: value} per repeat] -> {metric: interval}."""
    return {key: interval([r[key] for r in per_repeat]) for key in per_repeat[0]}


def paired_differences(arm_repeats, baseline_repeats):
    """{metric: interval of arm - baseline over repeats} (repeats paired by seed)."""
    return {key: interval([a[key] - b[key] for a, b in zip(arm_repeats, baseline_repeats)])
            for key in arm_repeats[0]}


def verdict(difference):
    """'helps' if the interval of a difference lies above 0, 'hurts' if below, 'no measurable
    effect' if it holds 0, 'undetermined' without an interval (one repeat)."""
    if difference["low"] is None or math.isnan(difference["low"]):
        return "undetermined"
    if difference["low"] > 0:
        return "helps"
    if difference["high"] < 0:
        return "hurts"
    return "no measurable effect"
