"""The whole experiment: plan (every check, before anything is written), load, train every
arm K times, score, report.

    plan = check(settings)            # data listing, split, sources, leak and size checks
    plan = start(settings, plan)      # output folder, split.csv, runs' images generated
    result = run(settings)            # check + start + decode + train + score + report
"""
import dataclasses
import datetime
import os
import time

import numpy as np

import data_loader
from skingan.benefit import arms as arms_module
from skingan.benefit import report, scoring, sources, split as split_module
from skingan.benefit.train_classifier import TrainSettings, fit_and_predict
from skingan.errors import UserError


@dataclasses.dataclass
class Settings:
    data: str
    synthetic_arms: dict            # {arm name: [(class, SOURCE), ...]}; the CLI's is 'synthetic'
    name: str
    results_dir: str
    models_dir: str
    labels: str = None
    add: int = None                 # images per listed class; None: up to the median count
    repeats: int = 3
    seed: int = 0
    train: TrainSettings = dataclasses.field(default_factory=TrainSettings)
    crop: str = "resize"
    cache_dir: str = None
    split_path: str = None          # default: <output folder>/split.csv
    test_fraction: float = 0.15
    val_fraction: float = 0.15

    @property
    def out_dir(self):
        return os.path.join(self.results_dir, f"benefit-{self.name}")


@dataclasses.dataclass
class Plan:
    records: list                   # data_loader.LabelledImage, sorted by image id
    classes: list                   # class names; index = label
    split: dict                     # {image id: fold}
    split_path: str
    split_reused: bool
    sources: dict                   # {arm: [sources.Source]}
    additions: dict                 # {class name: images to add}
    paths: dict                     # {arm: {class name: synthetic image paths}}
    test_support: dict = None       # {class name: {'images', 'lesions'}} of the decoded test fold

    def labels(self):
        index = {c: k for k, c in enumerate(self.classes)}
        return np.array([index[r.class_name] for r in self.records])


def _match_classes(settings, classes):
    """Canonical class spellings in --synthetic (UserError naming the classes present)."""
    matched = {}
    for arm, specs in settings.synthetic_arms.items():
        # CLASS may list several classes (df,vasc=RUN): one class-conditional run for all
        matched[arm] = [(data_loader._match_class(c, classes, "the data"), spec)
                        for names, spec in specs for c in names.split(",") if c.strip()]
        names = [c for c, _ in matched[arm]]
        if len(set(names)) != len(names):
            raise UserError(f"--synthetic names class {names[0]} more than once")
    if not any(matched.values()):
        raise UserError("no --synthetic CLASS=SOURCE given: nothing to compare")
    return matched


def _additions(settings, plan, listed, log):
    """{class: images to add}: --add for every listed class, else up to the median."""
    train = np.array([plan.split[r.image_id] == "train" for r in plan.records])
    labels = plan.labels()[train]
    index = {c: k for k, c in enumerate(plan.classes)}
    if settings.add is not None:
        return {c: settings.add for c in listed}
    by_index = arms_module.default_additions(labels, [index[c] for c in listed],
                                             len(plan.classes))
    additions = {c: by_index[index[c]] for c in listed}
    for c, n in additions.items():
        if n == 0:
            log(f"warning: class {c} already has at least the median number of training "
                "images, so nothing is added (give --add N to add anyway)")
    return additions


def check(settings, log=print):
    """Every check that needs no decoding, in the order a user would want to hear of
    problems; writes nothing (no folder, no split, no images), so a refused input leaves
    nothing behind. Returns the Plan without synthetic image paths (``start`` adds them)."""
    records = data_loader.list_labelled_images(settings.data, settings.labels)
    classes = sorted({r.class_name for r in records}, key=str.lower)
    matched = _match_classes(settings, classes)
    resolved = {arm: [sources.resolve(c, spec, settings.models_dir) for c, spec in specs]
                for arm, specs in matched.items()}
    split_path = settings.split_path or os.path.join(settings.out_dir, "split.csv")
    split, reused = split_module.load_or_make_split(
        split_path, records, settings.test_fraction, settings.val_fraction, settings.seed, log,
        write=False)
    plan = Plan(records, classes, split, split_path, reused, resolved, {}, {})
    for source_list in resolved.values():
        for source in source_list:
            sources.check_leak(source, split, log)
            if source.kind == "folder":
                sources.check_folder_resolution(source, settings.train.resolution)
            else:
                sources.check_run(source, settings.models_dir, settings.train.resolution)
    listed = sorted({s.class_name for sl in resolved.values() for s in sl}, key=str.lower)
    plan.additions = _additions(settings, plan, listed, log)
    return plan


def start(settings, plan, log=print):
    """The work begins: the output folder, split.csv (if new), each run's images generated
    into it; every source's image paths picked. Returns ``plan``."""
    os.makedirs(settings.out_dir, exist_ok=True)
    if not plan.split_reused and not os.path.exists(plan.split_path):
        split_module.write_split(plan.split_path, plan.split, plan.records)
        log(f"wrote a new split to {plan.split_path}")
    for arm, source_list in plan.sources.items():
        plan.paths[arm] = {}
        for source in source_list:
            n = plan.additions[source.class_name]
            if source.kind == "run":
                folder = os.path.join(settings.out_dir, "synthetic", f"{arm}-{source.class_name}")
                sources.materialise_run(source, n, settings.seed, settings.models_dir, folder,
                                        settings.train.resolution, log)
            plan.paths[arm][source.class_name] = sources.pick_paths(source, n, settings.seed)
            if len(plan.paths[arm][source.class_name]) < n:
                log(f"warning: {source.describe()} holds {source.available} images, fewer "
                    f"than the {n} asked for; using all of them")
    return plan


def prepare(settings, log=print):
    """``check`` then ``start``: the plan with every synthetic image in place."""
    return start(settings, check(settings, log), log)


def _decode(paths, layout, root, settings, log):
    """uint8 (N, R, R, 3) through data_loader's decoder and cache; also the skipped paths."""
    source = data_loader.ImageSource(list(paths), layout, "all", root)
    images, skipped = data_loader._load(source, settings.train.resolution, settings.crop,
                                        settings.cache_dir, log)
    return images, {path for path, _ in skipped}


def load(settings, plan, log=print):
    """Decode the real images (dropping unreadable ones) and the synthetic ones. Returns
    ({fold: (images, labels)}, {arm: {class index: images}})."""
    images, skipped = _decode([r.path for r in plan.records], "labelled", settings.data,
                              settings, log)
    kept = [i for i, r in enumerate(plan.records) if r.path not in skipped]
    labels = plan.labels()[kept]
    folds = np.array([plan.split[plan.records[i].image_id] for i in kept])
    real = {fold: (np.ascontiguousarray(images[folds == fold]), labels[folds == fold])
            for fold in split_module.FOLDS}
    plan.test_support = test_support(plan, kept)
    index = {c: k for k, c in enumerate(plan.classes)}
    synthetic = {}
    for arm, by_class in plan.paths.items():
        synthetic[arm] = {}
        for class_name, paths in by_class.items():
            if paths:
                decoded, _ = _decode(paths, "folder", os.path.dirname(paths[0]), settings, log)
            else:
                decoded = np.zeros((0,) + real["train"][0].shape[1:], np.uint8)
            synthetic[arm][index[class_name]] = np.asarray(decoded)
    return real, synthetic


def check_copying(plan, real, synthetic, log=print):
    """Each synthetic source's data-copying test against its class's training fold, with the
    class's validation and test images held out (sources.check_copying)."""
    for arm, source_list in plan.sources.items():
        for source in source_list:
            k = plan.classes.index(source.class_name)
            train = real["train"][0][real["train"][1] == k]
            heldout = np.concatenate([real[f][0][real[f][1] == k] for f in ("val", "test")])
            sources.check_copying(source, train, heldout, synthetic[arm].get(k, train[:0]))
            log(f"{source.describe()}: {sources.copying_text(source.copying)}")


def test_support(plan, kept):
    """{class: {'images': test images, 'lesions': distinct lesions among them}} over the
    records ``kept`` (indices; unreadable images dropped). An image without a lesion id is
    its own lesion."""
    support = {c: {"images": 0, "lesions": set()} for c in plan.classes}
    for i in kept:
        r = plan.records[i]
        if plan.split[r.image_id] == "test":
            support[r.class_name]["images"] += 1
            support[r.class_name]["lesions"].add(r.lesion_id or r.image_id)
    return {c: {"images": v["images"], "lesions": len(v["lesions"])}
            for c, v in support.items()}


def arm_names(settings):
    return [arms_module.REAL, arms_module.OVERSAMPLE] + list(settings.synthetic_arms)


def train_arms(settings, plan, real, synthetic, log=print):
    """Every arm, ``repeats`` times; repeat r uses seed + r in every arm (a paired design).
    Returns {arm: {'training_images', 'training_counts', 'repeats': [...]}}."""
    train_images, train_labels = real["train"]
    results = {}
    for arm in arm_names(settings):
        training = arms_module.build_arm(arm, train_images, train_labels, synthetic,
                                         settings.seed)
        log(f"arm {arm}: {len(training.labels)} training images")
        repeats = []
        for r in range(settings.repeats):
            seed = settings.seed + r
            out = fit_and_predict(settings.train, training, *real["val"], real["test"][0],
                                  len(plan.classes), seed,
                                  tag=f"[{arm} {r + 1}/{settings.repeats}]", log=log)
            scores = scoring.score(real["test"][1], out["probabilities"], plan.classes)
            log(f"[{arm} {r + 1}/{settings.repeats}] test balanced accuracy "
                f"{scores['balanced_accuracy']:.3f} (best epoch {out['best_epoch']})")
            repeats.append({"seed": seed, "scores": scores, "history": out["history"],
                            "best_epoch": out["best_epoch"], "epochs_run": out["epochs_run"],
                            "seconds": round(out["seconds"], 2)})
        results[arm] = {"training_images": int(len(training.labels)),
                        "training_counts": training.counts(plan.classes),
                        "repeats": repeats}
    return results


def summarise(settings, plan, arm_results):
    """Add per-arm summaries; return (differences, verdicts)."""
    flat = {arm: [scoring.flatten(r["scores"]) for r in info["repeats"]]
            for arm, info in arm_results.items()}
    for arm, info in arm_results.items():
        info["summary"] = scoring.summarise(flat[arm])
        info["confusion_total"] = np.sum([r["scores"]["confusion"] for r in info["repeats"]],
                                         axis=0).tolist()
    differences, verdicts = {}, {}
    for arm in settings.synthetic_arms:
        vs_real = scoring.paired_differences(flat[arm], flat[arms_module.REAL])
        vs_over = scoring.paired_differences(flat[arm], flat[arms_module.OVERSAMPLE])
        differences[f"{arm} - real"], differences[f"{arm} - oversample"] = vs_real, vs_over
        verdicts[arm] = {}
        for source in plan.sources[arm]:
            name, key = source.class_name, f"sensitivity/{source.class_name}"
            n_test = plan.test_support[name]["images"]
            verdicts[arm][name] = {
                "verdict": scoring.verdict(vs_over[key], n_test),
                "vs_oversample": vs_over[key], "vs_real": vs_real[key],
                "test_images": n_test, "test_lesions": plan.test_support[name]["lesions"],
                "step": 1.0 / n_test if n_test else None,
                "detectable": scoring.detectable(vs_over[key], n_test) if n_test else None}
    return differences, verdicts


def _versions():
    from importlib.metadata import PackageNotFoundError, version
    found = {}
    for package in ("tensorflow", "keras", "numpy", "scikit-learn", "isic-challenge-scoring"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def build_result(settings, plan, arm_results, seconds):
    differences, verdicts = summarise(settings, plan, arm_results)
    class_counts = {c: sum(r.class_name == c for r in plan.records) for c in plan.classes}
    source_info = {arm: [dict(dataclasses.asdict(s), used=len(plan.paths[arm][s.class_name]))
                         for s in source_list] for arm, source_list in plan.sources.items()}
    train_settings = dataclasses.asdict(settings.train)
    return {
        "name": settings.name,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "versions": _versions(),
        "settings": dict(train_settings, repeats=settings.repeats, seed=settings.seed,
                         add=settings.add, crop=settings.crop),
        "data": {"path": os.path.abspath(settings.data), "num_images": len(plan.records),
                 "class_counts": class_counts,
                 "lesion_ids": any(r.lesion_id for r in plan.records),
                 "split": {"path": plan.split_path, "reused": plan.split_reused,
                           "counts": split_module.fold_counts(plan.split, plan.records)}},
        "classes": plan.classes,
        "listed_classes": sorted(plan.additions, key=str.lower),
        "test_support": plan.test_support,
        "additions": plan.additions,
        "sources": source_info,
        "arms": arm_results,
        "differences": differences,
        "verdicts": verdicts,
        "seconds": round(seconds, 1),
    }


def run(settings, log=print, plan=None):
    """Run the experiment and write its report; returns the report.json dict. ``plan``:
    ``check``'s, if the caller checked first (classify.py does, before fetching weights)."""
    began = time.perf_counter()
    plan = start(settings, plan or check(settings, log), log)
    real, synthetic = load(settings, plan, log)
    check_copying(plan, real, synthetic, log)
    arm_results = train_arms(settings, plan, real, synthetic, log)
    result = build_result(settings, plan, arm_results, time.perf_counter() - began)
    written = report.write_all(result, settings.out_dir)
    for line in report.verdict_lines(result):
        log(line)
    log(f"report: {written[0]} (and report.json, figures) in {settings.out_dir}")
    return result
