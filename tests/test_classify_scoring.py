"""classify.py's numbers: metrics against a confusion matrix worked out by hand, intervals,
verdicts, and what each arm trains on."""
import numpy as np
import pytest

from skingan.benefit import arms, scoring

# 9 test images, 3 classes. Predicted classes (argmax) and the confusion matrix they give
# (rows true, columns predicted):
#   true a: a a b      [[2, 1, 0],
#   true b: b c         [0, 1, 1],
#   true c: c c a c     [1, 0, 3]]
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
Y_PRED = np.array([0, 0, 1, 1, 2, 2, 2, 0, 2])
PROBS = np.eye(3)[Y_PRED] * 0.8 + 0.05       # 0.85 on the predicted class, 0.05 elsewhere


def test_metrics_match_a_hand_computed_confusion_matrix():
    s = scoring.score(Y_TRUE, PROBS, ["a", "b", "c"])
    assert s["confusion"] == [[2, 1, 0], [0, 1, 1], [1, 0, 3]]
    # sensitivity = diagonal / row sum; balanced accuracy = their mean
    sens = [2 / 3, 1 / 2, 3 / 4]
    assert [s["per_class"][c]["sensitivity"] for c in "abc"] == pytest.approx(sens)
    assert s["balanced_accuracy"] == pytest.approx(np.mean(sens))
    assert s["accuracy"] == pytest.approx(6 / 9)
    # specificity of a: TN / (TN + FP) = 5 / 6 (one c image predicted a)
    assert s["per_class"]["a"]["specificity"] == pytest.approx(5 / 6)
    # F1 of b: 2 TP / (2 TP + FP + FN) = 2 / (2 + 1 + 1)
    assert s["per_class"]["b"]["f1"] == pytest.approx(0.5)
    assert s["macro_f1"] == pytest.approx(np.mean([2 / 3, 1 / 2, 3 / 4]))
    # AUC of a: P(score of an a image > score of another) over 3 x 6 pairs, ties count 1/2:
    # the two 0.85s beat five 0.05s and tie one 0.85 (5.5 each); the 0.05 ties five (2.5)
    assert s["per_class"]["a"]["auc"] == pytest.approx((5.5 + 5.5 + 2.5) / 18)


def test_t_interval_and_one_repeat():
    # mean 0.2, sd 0.1, t(0.975, 2) = 4.3027: 0.2 +- 4.3027 * 0.1 / sqrt(3)
    ci = scoring.interval([0.1, 0.2, 0.3])
    assert ci["mean"] == pytest.approx(0.2)
    assert ci["high"] - ci["mean"] == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-5)
    assert scoring.interval([0.4, 0.4])["low"] == 0.4
    assert scoring.interval([0.4])["low"] is None


def test_paired_differences_and_verdicts():
    a = [{"m": 0.5}, {"m": 0.6}, {"m": 0.7}]
    b = [{"m": 0.4}, {"m": 0.45}, {"m": 0.62}]
    diff = scoring.paired_differences(a, b)["m"]
    assert diff["mean"] == pytest.approx(np.mean([0.1, 0.15, 0.08]))
    assert scoring.verdict(diff) == "helps"
    assert scoring.verdict(scoring.paired_differences(b, a)["m"]) == "hurts"
    assert scoring.verdict(scoring.interval([-0.1, 0.1, 0.05])) == "no measurable effect"
    assert scoring.verdict(scoring.interval([0.3])) == "undetermined"


def test_oversample_arm_matches_the_synthetic_arm_count_per_class():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 5)
    images = np.arange(len(labels), dtype=np.uint8)[:, None, None, None] * np.ones(
        (1, 4, 4, 3), np.uint8)                          # image i is filled with the value i
    synthetic = {1: np.full((7, 4, 4, 3), 200, np.uint8), 2: np.full((2, 4, 4, 3), 201, np.uint8)}
    syn = arms.build_arm("synthetic", images, labels, {"synthetic": synthetic}, seed=0)
    over = arms.build_arm("oversample", images, labels, {"synthetic": synthetic}, seed=0)
    real = arms.build_arm("real", images, labels, {"synthetic": synthetic}, seed=0)
    assert np.bincount(syn.labels).tolist() == np.bincount(over.labels).tolist() == [10, 10, 7]
    assert np.bincount(real.labels).tolist() == [10, 3, 5]
    # the repeats are real images of the right class, each used 7 // 3 or 7 // 3 + 1 times
    repeats = over.images[over.origin == "repeat"][:, 0, 0, 0]
    assert set(repeats[over.labels[over.origin == "repeat"] == 1]) == {10, 11, 12}
    assert sorted(np.bincount(repeats[:7])[10:13]) == [2, 2, 3]
    assert over.counts(["a", "b", "c"])["b"] == {"real": 3, "repeat": 7, "synthetic": 0}
    assert syn.counts(["a", "b", "c"])["c"] == {"real": 5, "repeat": 0, "synthetic": 2}


def test_default_additions_raise_listed_classes_to_the_median():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 6 + [3] * 8)   # counts 10 3 6 8: median 7
    assert arms.default_additions(labels, [1, 2, 0], 4) == {1: 4, 2: 1, 0: 0}
