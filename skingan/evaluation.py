"""What evaluate.py computes, once its flags are parsed and checked: the two image sets at one
resolution, every metric (skingan.metrics), a conditional run's per-class scores and their
mean, and the text tables printed. `args` is evaluate.py's parsed namespace.
"""
import math
import os

from skingan import quiet_tf
from skingan.errors import UserError


def check_resolution(resolution, what):
    if resolution < 16 or resolution & (resolution - 1):
        raise UserError(f"{what} must be a power of two >= 16 (SWD's coarsest level is 16 px), "
                        f"got {resolution}")


def find_set(path, what, labels=None, class_name=None):
    """--real: data_loader.find_images (any layout); --fake: every image in the folder.
    Errors name the option."""
    from data_loader import DataError, find_images, images_in_folder
    try:
        if what == "--fake":
            return images_in_folder(path)
        return find_images(path, labels=labels, class_name=class_name)
    except DataError as err:
        raise UserError(f"{what}: {err}") from None


def fake_image_size(paths):
    """The side of the fake images, read from their headers only. They must all have one
    size: a file of another size (a grid, another run's images) is named, not scored."""
    from PIL import Image
    sizes = {}
    for path in paths:
        try:
            with Image.open(path) as img:
                sizes[path] = img.size
        except OSError as err:
            raise UserError(f"--fake: cannot read {path}: {err}") from None
    counts = {}
    for size in sizes.values():
        counts[size] = counts.get(size, 0) + 1
    expected = max(counts, key=counts.get)          # the size most of the images have
    if len(counts) > 1:
        odd = next(path for path, size in sizes.items() if size != expected)
        raise UserError(f"--fake: {odd} is {sizes[odd][0]}x{sizes[odd][1]} px, the other "
                        f"fake images are {expected[0]}x{expected[1]}; the folder must hold "
                        "only one generator's images (move that file out)")
    return expected[0]


def resize_uint8(images, resolution):
    """uint8 (N, r, r, 3) -> (N, resolution, resolution, 3), Lanczos as data_loader does."""
    import numpy as np
    from PIL import Image
    if images.shape[1] == resolution:
        return images
    return np.stack([np.asarray(Image.fromarray(img).resize((resolution, resolution),
                                                            Image.Resampling.LANCZOS))
                     for img in images])


def generate_fakes(args, log=print, bundle=None, label=None):
    """--run: generate --n images (of class `label`) with skingan.sampling -> (bundle, uint8
    (n, R, R, 3))."""
    import numpy as np

    from skingan.sampling import generate_images, load_generator
    bundle = bundle or load_generator(args.run, args.models_dir)
    batches, done = [], 0
    for _, batch in generate_images(bundle, args.n, seed=args.seed, batch_size=args.batch_size,
                                    truncation=args.truncation, label=label):
        batches.append(batch)
        done += len(batch)
        if len(batches) % 20 == 0 or done == args.n:
            log(f"generated {done}/{args.n} images")
    return bundle, np.concatenate(batches, axis=0)


def run_classes(args):
    """The classes to score for a class-conditional --run (all of them, or --class), else
    None. Read from its config.json, before TensorFlow is imported."""
    if not args.run or args.run.endswith(".keras"):
        return None
    from skingan.sampling import find_run_dir
    from skingan.runs import read_config
    settings = read_config(find_run_dir(args.run, args.models_dir))["settings"]
    if not settings.get("conditional"):
        return None
    classes = list(settings["classes"])
    if args.class_name and args.class_name.strip().lower() != "all":
        chosen = [c for c in classes if c.lower() == args.class_name.strip().lower()]
        if not chosen:
            raise UserError(f"class '{args.class_name}' is not one of run '{args.run}''s "
                            f"classes: {', '.join(classes)}")
        return chosen
    return classes


def feature_network(args, log=print):
    """The network for FID/KID/precision/recall, loaded once per evaluate.py run:
    (keras.Model, None), or (None, why) without InceptionV3 weights, said once in one short
    line (the long help is in evaluate.py --help)."""
    from skingan import metrics
    if args.feature_net == "random-small":
        return metrics.random_feature_net(), None
    if args.fid_network == "inception-2015":
        return metrics.load_inception_2015(args.inception_2015), None
    try:
        return metrics.load_inception(args.inception_weights, log), None
    except metrics.MissingWeightsError as err:
        if args.inception_weights:
            raise
        why = f"FID, KID, precision and recall skipped: {err.short()}"
        log(f"{why}; how to get them: evaluate.py --help")
        return None, why


def score(args, reals, fakes, features):
    """Every metric of `fakes` against `reals` (uint8 arrays of one resolution); `features`:
    feature_network(args)'s."""
    from skingan import metrics
    feature_model, skipped = features
    return metrics.compute_all(reals, fakes, feature_model=feature_model, skipped=skipped,
                               inception_weights=args.inception_weights, seed=args.seed,
                               batch_size=args.batch_size, swd_max_images=args.swd_images)


def mean_scores(results):
    """The mean over classes of each headline figure (None where any class lacks it)."""
    def mean(values):
        values = [v for v in values if v is not None and not math.isnan(v)]
        return sum(values) / len(values) if len(values) == len(results) else None
    rows = list(results.values())
    return {"fid": mean([r["fid"] for r in rows]),
            "kid": mean([(r["kid"] or {}).get("mean") for r in rows]),
            "precision": mean([r["precision"] for r in rows]),
            "recall": mean([r["recall"] for r in rows]),
            "swd": mean([r["swd"]["average"] for r in rows])}


def class_table(results, mean):
    """One line per class and the mean: FID, KID, precision, recall, SWD average."""
    def num(value, fmt):
        return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
            else format(value, fmt)
    width = max(len("mean"), *(len(c) for c in results)) + 2
    lines = [f"{'class':<{width}}{'real':>6} {'FID':>9} {'KID':>9} {'prec.':>7} {'recall':>7} "
             f"{'SWD':>9}"]
    for name, r in list(results.items()) + [("mean", None)]:
        row = mean if r is None else dict(
            fid=r["fid"], kid=(r["kid"] or {}).get("mean"), precision=r["precision"],
            recall=r["recall"], swd=r["swd"]["average"])
        lines.append(f"{name:<{width}}{'' if r is None else r['n_real']:>6} "
                     f"{num(row['fid'], '.3f'):>9} {num(row['kid'], '.5f'):>9} "
                     f"{num(row['precision'], '.4f'):>7} {num(row['recall'], '.4f'):>7} "
                     f"{num(row['swd'], '.3f'):>9}")
    return lines


def evaluate_per_class(args, classes):
    """A conditional run, class by class: --n images of each class against that class's
    real images, then the mean over the classes."""
    from data_loader import load_images
    from skingan.sampling import load_generator
    from skingan.runs import read_config
    sources = {c: find_set(args.real, "--real", args.labels, c) for c in classes}
    quiet_tf.import_tensorflow()
    bundle = load_generator(args.run, args.models_dir)
    crop = args.crop or read_config(bundle.run_dir)["settings"].get("crop", "resize")
    resolution = args.resolution or bundle.resolution
    check_resolution(resolution, "--resolution" if args.resolution else "the fake images' size")
    features = feature_network(args)
    results = {}
    for name in classes:
        print(f"class {name}: real {sources[name].describe()}")
        _, fakes = generate_fakes(args, bundle=bundle, label=bundle.class_index(name))
        reals = load_images(sources[name], resolution, crop=crop, cache_dir=args.cache_dir)
        results[name] = dict(score(args, reals, resize_uint8(fakes, resolution), features),
                             real=sources[name].describe(),
                             fake=f"{len(fakes)} images of class {name} generated by "
                                  f"{bundle.source}")
        print("\n".join("  " + line for line in format_table(results[name], note=False)))
    result = {"per_class": results, "mean": mean_scores(results), "classes": classes}
    print("\n".join(class_table(results, result["mean"])))
    return result


def format_table(result, note=True):
    """The results as aligned text lines; ``note``: end with a line on skipped metrics."""
    def num(value, fmt):
        return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
            else format(value, fmt)

    kid = result["kid"] or {}
    lines = [f"real images {result['n_real']}, fake images {result['n_fake']}, "
             f"{result['resolution']} px, features: {result['feature_net'] or 'none'}",
             f"{'FID':<16}{num(result['fid'], '.3f')}",
             f"{'KID':<16}{num(kid.get('mean'), '.5f')} +- {num(kid.get('std'), '.5f')}",
             f"{'precision':<16}{num(result['precision'], '.4f')}",
             f"{'recall':<16}{num(result['recall'], '.4f')}"]
    swd = result["swd"]
    for res, value in zip(swd["resolutions"], swd["levels"]):
        lines.append(f"{f'SWD {res}px':<16}{value:.3f}")
    lines.append(f"{'SWD average':<16}{swd['average']:.3f}   (x1e3, {swd['images']} images per set)")
    if result["feature_net"] == "random_small_feature_net":
        lines.append("NOTE: --feature-net random-small is for testing only; FID, KID, precision "
                     "and recall above are meaningless")
    if note and result.get("skipped"):
        lines.append("FID, KID, precision, recall: skipped, no InceptionV3 weights "
                     "(evaluate.py --help says how to get them)")
    return lines


def evaluate_one(args):
    """--fake or an unconditional --run: every metric of the fake set against --real, and
    with --copying the data-copying test (skingan.copying); without --real, that test only."""
    from data_loader import load_images
    real_source = find_set(args.real, "--real", args.labels, args.class_name) \
        if args.real else None
    fake_source = bundle = None
    if args.fake:
        fake_source = find_set(args.fake, "--fake")
        fake_size = fake_image_size(fake_source.paths)
    elif not args.run.endswith(".keras"):        # unknown run: fail before loading Keras
        from skingan.sampling import find_run_dir
        find_run_dir(args.run, args.models_dir)
    copy_sets = copying_sources(args) if args.copying else None   # refusals before TensorFlow
    quiet_tf.import_tensorflow()                 # before anything else imports TensorFlow
    if args.fake:
        resolution = args.resolution or fake_size
        fake_what = fake_source.describe()
    else:
        bundle, fakes = generate_fakes(args)
        if args.crop is None and bundle.run_dir:  # real images made square as training did
            from skingan.runs import read_config
            args.crop = read_config(bundle.run_dir)["settings"].get("crop", "resize")
        resolution = args.resolution or bundle.resolution
        fake_what = f"{len(fakes)} images generated by {bundle.source}"
    check_resolution(resolution, "--resolution" if args.resolution else "the fake images' size")

    if real_source:
        print(f"real: {real_source.describe()}")
    print(f"fake: {fake_what}")
    if fake_source is not None:
        fakes = load_images(fake_source, resolution, crop="resize")
    else:
        fakes = resize_uint8(fakes, resolution)

    if real_source:
        reals = load_images(real_source, resolution, crop=args.crop or "resize",
                            cache_dir=args.cache_dir)
        result = score(args, reals, fakes, feature_network(args))
        result["real"] = real_source.describe()
    else:
        result = {"n_fake": int(len(fakes)), "resolution": int(resolution)}
    result["fake"] = fake_what
    if real_source:
        print("\n".join(format_table(result)))
    if copy_sets:
        result["copying"] = copying_report(args, copy_sets, fakes, resolution)
    return result


# ----------------------------------------------------------------------------------------------
# --copying: the data-copying test (skingan.copying)
# ----------------------------------------------------------------------------------------------

def copying_sources(args):
    """The training and held-out ImageSources of --copying, with the cheap refusals done
    (no image decoded yet): --train/--heldout folders, or the --run's data split by its
    trained_images.txt (every image of its class it did not train on is held out)."""
    from skingan import copying
    if args.train:
        train = find_set(args.train, "--train", args.labels, args.class_name)
        heldout = find_set(args.heldout, "--heldout", args.labels, args.class_name)
        what = f"--train {train.describe()}; --heldout {heldout.describe()}"
    else:
        train, heldout = run_split(args)
        what = (f"the run's {len(train.paths)} training images and the {len(heldout.paths)} "
                f"other images of its data ({heldout.root})")
    copying.check_sizes(len(train.paths), len(heldout.paths), args.cells)
    copying.check_no_overlap(train.paths, heldout.paths)        # ids, then decoded pixels
    return train, heldout, what


def run_split(args):
    """--run RUN --copying: (trained on, held out) ImageSources from the run's config.json
    (its data, labels and class) and trained_images.txt."""
    from data_loader import DataError, find_images
    from skingan.sampling import find_run_dir
    from skingan import copying
    from skingan.runs import TRAINED_IMAGES, read_config
    if args.run.endswith(".keras"):
        raise UserError("--copying with a .keras --run needs --train DIR and --heldout DIR "
                        "(a bare generator file does not say what it trained on)")
    run_dir = find_run_dir(args.run, args.models_dir)
    config = read_config(run_dir)
    if config["settings"].get("conditional"):
        raise UserError("--copying scores one class at a time; for a conditional run pass "
                        "--train DIR --heldout DIR and --fake images of one class")
    listing = os.path.join(run_dir, TRAINED_IMAGES)
    if not os.path.isfile(listing):
        raise UserError(f"run '{args.run}' has no {TRAINED_IMAGES} (it predates the file); "
                        "pass --train DIR and --heldout DIR")
    with open(listing) as f:
        trained = {line.strip() for line in f if line.strip()}
    data = config["data"]
    try:
        source = find_images(data["path"], data.get("labels"), data.get("class"))
    except DataError as err:
        raise UserError(f"the run's data ({data['path']}): {err}") from None
    return copying.split_by_ids(source, trained)


def copying_report(args, sets, fakes, resolution):
    """Run the data-copying test of `fakes` (uint8 at `resolution`) against the training and
    held-out sets; print its lines, write copies.png; -> the JSON summary."""
    from data_loader import load_images
    from skingan import copying
    train_source, heldout_source, what = sets
    crop = args.crop or "resize"
    print(f"copying test: {what}")
    train = load_images(train_source, resolution, crop=crop, cache_dir=args.cache_dir)
    heldout = load_images(heldout_source, resolution, crop=crop, cache_dir=args.cache_dir)
    copying.check_sizes(len(train), len(heldout), args.cells)      # after unreadable files
    feature = {"auto": "auto", "inception": copying.INCEPTION_FEATURE,
               "pixels": copying.PIXEL_FEATURE}[args.copying_feature]
    name, feats = copying.features(train, heldout, fakes, feature=feature,
                                   inception_weights=args.inception_weights,
                                   batch_size=args.batch_size)
    summary, per_image = copying.run_test(*feats, feature=name, cells=args.cells,
                                          seed=args.seed)
    print("\n".join(copying.format_lines(summary, verbose=args.verbose)))
    path = args.copies or os.path.join(
        os.path.dirname(os.path.abspath(args.json)) if args.json else os.getcwd(), "copies.png")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    copying.save_copies_png(path, fakes, train, per_image)
    print(f"wrote {path} (the {copying.COPIES_SHOWN} generated images nearest to a training "
          "image, each beside that image)")
    summary["copies_png"] = path
    return summary
