"""The experiment's outputs: report.json (everything), report.md (the tables a paper would
print and one verdict line per listed class) and the figures.

Every number in report.md is formatted from report.json by ``fmt`` / ``fmt_diff``, so the two
cannot disagree.
"""
import json
import os

import numpy as np

from skingan.benefit import scoring
from skingan.benefit.sources import copying_text

METRIC_NAMES = {"balanced_accuracy": "Balanced acc.", "accuracy": "Accuracy",
                "macro_f1": "Macro F1", "sensitivity": "Sensitivity",
                "specificity": "Specificity", "f1": "F1", "auc": "AUC"}


def fmt(summary, signed=False):
    """'0.812 [0.790, 0.834]'; '0.812 [undefined]' without an interval (one repeat)."""
    number = "{:+.3f}" if signed else "{:.3f}"
    mean = number.format(summary["mean"])
    if summary["low"] is None:
        return f"{mean} [undefined]"
    return f"{mean} [{number.format(summary['low'])}, {number.format(summary['high'])}]"


def write_json(result, folder):
    path = os.path.join(folder, "report.json")
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(path + ".tmp", path)
    return path


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _main_table(result):
    """Rows: arms, then each synthetic arm's paired differences; columns: overall metrics and
    the listed classes' sensitivity, specificity and AUC."""
    keys = list(scoring.OVERALL) + [f"{m}/{c}" for c in result["listed_classes"]
                                    for m in ("sensitivity", "specificity", "auc")]
    header = ["Arm", "Training images"] + [
        METRIC_NAMES[k] if "/" not in k else f"{METRIC_NAMES[k.split('/')[0]]} {k.split('/')[1]}"
        for k in keys]
    rows = [[arm, info["training_images"]] + [fmt(info["summary"][k]) for k in keys]
            for arm, info in result["arms"].items()]
    rows += [[pair, ""] + [fmt(diff[k], signed=True) for k in keys]
             for pair, diff in result["differences"].items()]
    return _table(header, rows)


def _per_class_table(result):
    arms = list(result["arms"])
    rows = []
    for class_name in result["classes"]:
        for metric in scoring.PER_CLASS:
            key = f"{metric}/{class_name}"
            rows.append([class_name, METRIC_NAMES[metric]]
                        + [fmt(result["arms"][a]["summary"][key]) for a in arms])
    return _table(["Class", "Metric"] + arms, rows)


def support_text(v):
    """'test: 8 images from 3 lesions; detectable: +-0.125 (steps of 1/8 = 0.125; the 3
    repeats' interval half-width 0.090)': how much a verdict rests on."""
    text = f"test: {v['test_images']} images from {v['test_lesions']} lesions"
    if v["detectable"] is None:
        return text
    half = v["vs_oversample"]["half_width"]
    return (f"{text}; detectable: +-{v['detectable']:.3f} (steps of 1/{v['test_images']} = "
            f"{v['step']:.3f}; the {v['vs_oversample']['n']} repeats' interval half-width "
            f"{half:.3f})")


def verdict_lines(result):
    lines = []
    for arm, per_class in result["verdicts"].items():
        for class_name, v in per_class.items():
            lines.append(
                f"- {class_name} ({arm}): **{v['verdict']}**: sensitivity {arm} - oversample "
                f"{fmt(v['vs_oversample'], signed=True)}, {arm} - real "
                f"{fmt(v['vs_real'], signed=True)}; {support_text(v)}")
    return lines


def _header_lines(result):
    s, d = result["settings"], result["data"]
    counts = {fold: sum(c.values()) for fold, c in d["split"]["counts"].items()}
    split_how = "by lesion" if d["lesion_ids"] else \
        "by image (no lesion ids: scores may be inflated)"
    repeats = s["repeats"]
    lines = [
        f"# Does synthetic data help the classifier? ({result['name']})", "",
        f"- Data: {d['path']}: {d['num_images']} images, classes "
        + ", ".join(f"{c} {n}" for c, n in d["class_counts"].items()) + ".",
        f"- Split {split_how}, stratified by class ({d['split']['path']}, "
        f"{'reused' if d['split']['reused'] else 'new'}): train {counts['train']}, "
        f"validation {counts['val']}, test {counts['test']} images. Synthetic images are "
        "added to the training fold only.",
        f"- Classifier: {s['backbone']} at {s['resolution']} px, up to {s['epochs']} epochs "
        f"(early stopping on the validation loss, patience {s['patience']}, best weights "
        f"restored), batch {s['batch_size']}, Adam lr {s['lr']}, class weights "
        f"{'balanced' if s['class_weight'] else 'none'}, ImageNet weights: "
        f"{s['weights_file'] or 'none'}; {repeats} repeat(s), seeds {s['seed']} to "
        f"{s['seed'] + repeats - 1}, the same for every arm.",
    ]
    for arm, sources in result["sources"].items():
        for src in sources:
            lines.append(f"- Synthetic images, arm {arm}, class {src['class_name']}: "
                         f"{src['used']} from {src['kind']} {src['spec']} (provenance: "
                         f"{src['provenance']}; {copying_text(src.get('copying'))}).")
    lines.append("- Oversample arm: each listed class's real training images repeated up "
                 "to the synthetic arm's count.")
    return lines


def write_markdown(result, folder):
    repeats = result["settings"]["repeats"]
    interval_note = (f"Intervals: 95 % Student-t over {repeats} repeats, clipped to [0, 1] "
                     "(a difference: [-1, 1]); differences are paired by seed. They cover "
                     "the training seeds on these test images, not the choice of test "
                     "images." if repeats > 1 else
                     "Intervals are undefined with one repeat: run --repeats 3 or more for "
                     "intervals and a verdict.")
    lines = _header_lines(result) + ["", "## Verdict (listed classes)", ""]
    lines += verdict_lines(result)
    lines += ["", "A verdict compares the listed class's test sensitivity with the oversample "
              "arm (the baseline an augmentation must beat): helps / hurts if the interval "
              "of the paired difference lies above / below 0. Otherwise it depends on the "
              "smallest difference the design can detect, max(1/n for n test images of the "
              "class, the interval's half-width): no measurable effect if that is at most "
              f"{scoring.WORTHWHILE:.2f}, else undetermined (docs/classify.md).", "",
              "## Test-set results (mean [95 % interval])", ""]
    lines += _main_table(result) + ["", interval_note, "", "## Per class", ""]
    lines += _per_class_table(result)
    lines += ["", "## Figures", ""]
    lines += [f"- [{name}]({name})" for name in result["figures"]]
    path = os.path.join(folder, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_confusion(confusion, class_names, title, path):
    """Row-normalised confusion matrix (rows: true class) with the counts written in."""
    plt = _pyplot()
    counts = np.asarray(confusion, np.float64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.6 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sensitivity(result, path):
    """Per-class test sensitivity, arms side by side, bars of the 95 % interval."""
    plt = _pyplot()
    classes, arms = result["classes"], list(result["arms"])
    width = 0.8 / len(arms)
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(classes), 3.5))
    for a, arm in enumerate(arms):
        stats = [result["arms"][arm]["summary"][f"sensitivity/{c}"] for c in classes]
        means = np.array([s["mean"] for s in stats])
        # error bars: distances from the mean to the interval ends (none with one repeat)
        err = None if stats[0]["low"] is None else np.array(
            [[m - s["low"] for m, s in zip(means, stats)],
             [s["high"] - m for m, s in zip(means, stats)]])
        ax.bar(np.arange(len(classes)) + (a - (len(arms) - 1) / 2) * width, means, width,
               yerr=err, capsize=3, label=arm)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test sensitivity")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(result, path):
    """Training and validation loss per epoch, one panel per arm, one line pair per repeat."""
    plt = _pyplot()
    arms = list(result["arms"])
    fig, axes = plt.subplots(1, len(arms), figsize=(3.2 * len(arms), 3), sharey=True,
                             squeeze=False)
    for ax, arm in zip(axes[0], arms):
        for r, rep in enumerate(result["arms"][arm]["repeats"]):
            epochs = np.arange(1, len(rep["history"]["loss"]) + 1)
            line, = ax.plot(epochs, rep["history"]["loss"], lw=1,
                            label="train" if r == 0 else None)
            ax.plot(epochs, rep["history"]["val_loss"], lw=1, ls="--", color=line.get_color(),
                    label="validation" if r == 0 else None)
            ax.axvline(rep["best_epoch"], color=line.get_color(), lw=0.5, alpha=0.5)
        ax.set_title(arm, fontsize=9)
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel("loss")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(result, folder):
    """All figures, then report.md and report.json; returns the paths written."""
    result["figures"] = [f"confusion_{arm}.png" for arm in result["arms"]] + [
        "per_class_sensitivity.png", "training_curves.png"]
    for arm, info in result["arms"].items():
        plot_confusion(info["confusion_total"], result["classes"],
                       f"{arm}: test predictions, {len(info['repeats'])} repeat(s) summed",
                       os.path.join(folder, f"confusion_{arm}.png"))
    plot_sensitivity(result, os.path.join(folder, "per_class_sensitivity.png"))
    plot_curves(result, os.path.join(folder, "training_curves.png"))
    return [write_markdown(result, folder), write_json(result, folder)]

