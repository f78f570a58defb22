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


T2 = 4.302653            # t(0.975, 2): three repeats
T4 = 2.776445            # t(0.975, 4): five repeats


def test_t_interval_and_one_repeat():
    # mean 0.2, sd 0.1, t(0.975, 2) = 4.3027: 0.2 +- 4.3027 * 0.1 / sqrt(3)
    ci = scoring.interval([0.1, 0.2, 0.3])
    assert ci["mean"] == pytest.approx(0.2)
    assert ci["half_width"] == pytest.approx(T2 * 0.1 / np.sqrt(3), rel=1e-5)
    assert ci["high"] - ci["mean"] == pytest.approx(T2 * 0.1 / np.sqrt(3), rel=1e-5)
    assert scoring.interval([0.4, 0.4])["low"] == 0.4
    assert scoring.interval([0.4])["low"] is None


def test_intervals_are_clipped_to_what_the_metric_can_take():
    # sensitivities 0.75, 1, 1: mean 0.9167, sd 0.1443, h = 4.3027 * 0.1443 / sqrt(3) = 0.3586
    sens = scoring.summarise([{"s": 0.75}, {"s": 1.0}, {"s": 1.0}])["s"]
    assert sens["high"] == 1.0 and sens["low"] == pytest.approx(0.9167 - 0.3586, abs=1e-3)
    assert sens["half_width"] == pytest.approx(0.3586, abs=1e-3)        # not clipped
    # differences -0.875, -0.125, -1: clipped at -1 below, not above
    diff = scoring.paired_differences([{"s": 0.125}, {"s": 0.875}, {"s": 0.0}],
                                      [{"s": 1.0}, {"s": 1.0}, {"s": 1.0}])["s"]
    assert diff["low"] == -1.0
    assert diff["high"] == pytest.approx(-2 / 3 + T2 * np.std([-0.875, -0.125, -1], ddof=1)
                                         / np.sqrt(3), rel=1e-5)


def test_paired_differences_and_verdicts():
    a = [{"m": 0.5}, {"m": 0.6}, {"m": 0.7}]
    b = [{"m": 0.4}, {"m": 0.45}, {"m": 0.62}]
    diff = scoring.paired_differences(a, b)["m"]
    assert diff["mean"] == pytest.approx(np.mean([0.1, 0.15, 0.08]))
    assert scoring.verdict(diff, 100) == "helps"
    assert scoring.verdict(scoring.paired_differences(b, a)["m"], 100) == "hurts"


def test_verdict_rule_on_hand_made_numbers():
    """detectable = max(1/n, h); 'no measurable effect' only when that is <= 0.05."""
    # 200 test images (steps of 0.005), differences 0.01, -0.01, 0.0, 0.005, -0.005:
    # sd 0.00791, h = 2.7764 * 0.00791 / sqrt(5) = 0.00982 -> detectable 0.00982 <= 0.05
    small = scoring.interval([0.01, -0.01, 0.0, 0.005, -0.005], bounds=(-1, 1))
    assert scoring.detectable(small, 200) == pytest.approx(0.00982, abs=1e-4)
    assert scoring.verdict(small, 200) == "no measurable effect"
    # the same differences on 8 test images: one image is 0.125, more than 0.05
    assert scoring.verdict(small, 8) == ("undetermined: too few test images (8) to detect "
                                         "less than +0.125")
    # 200 test images, differences 0.1, -0.1, 0.05: sd 0.1041, h = 4.3027 * 0.1041 / sqrt(3)
    # = 0.2586: the repeats, not the test images, are too few
    spread = scoring.interval([0.1, -0.1, 0.05], bounds=(-1, 1))
    assert scoring.detectable(spread, 200) == pytest.approx(0.2586, abs=1e-3)
    assert scoring.verdict(spread, 200) == ("undetermined: too few repeats (3) to detect less "
                                            "than +0.259")
    # 8 test images, differences -0.125, -0.5, 0.125: sd 0.3146, h = 4.3027 * 0.3146 / sqrt(3)
    # = 0.7815: both are too few
    demo = scoring.interval([-0.125, -0.5, 0.125], bounds=(-1, 1))
    assert demo["half_width"] == pytest.approx(T2 * np.std([-0.125, -0.5, 0.125], ddof=1)
                                               / np.sqrt(3))
    assert scoring.verdict(demo, 8) == ("undetermined: too few test images (8) and repeats (3) "
                                        "to detect less than +0.781")
    # wider than the metric's range: nothing could be detected
    wild = scoring.interval([-0.875, 0.5, 0.625], bounds=(-1, 1))
    assert wild["half_width"] > 1
    assert scoring.verdict(wild, 8) == ("undetermined: too few test images (8) and repeats "
                                        "(3) to detect any difference")
    # every repeat one test image better (no spread): resolved, even on 8 images
    assert scoring.verdict(scoring.interval([0.125] * 3, bounds=(-1, 1)), 8) == "helps"
    # no difference at all on 8 images is still not 'no measurable effect'
    assert scoring.verdict(scoring.interval([0.0] * 3, bounds=(-1, 1)), 8).startswith(
        "undetermined: too few test images (8)")
    assert scoring.verdict(scoring.interval([0.3]), 8) == (
        "undetermined: one repeat gives no interval (run --repeats 3 or more)")
    assert scoring.verdict(scoring.interval([0.1, 0.2]), 0) == (
        "undetermined: the class has no test images")


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
