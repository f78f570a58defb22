"""generate.py's fast path (compiled forward pass, inputs drawn ahead, PNGs written on a
thread pool) writes the very bytes of the straightforward path, and reports its failures."""
import os

import numpy as np
import pytest
from PIL import Image

import dcgan
import generate
import SL_StyleGAN
from skingan import sampling
from skingan import writer as writer_module
from skingan.errors import run_cli
from skingan.images import minmax_to_uint8, to_uint8


@pytest.fixture(scope="module")
def stylegan_file(tmp_path_factory):
    import keras
    keras.utils.set_random_seed(1)
    path = str(tmp_path_factory.mktemp("g") / "stylegan.keras")
    SL_StyleGAN.build_generator(16, channel_scale=0.125).save(path)
    return path


@pytest.fixture(scope="module")
def dcgan_file(tmp_path_factory):
    import keras
    keras.utils.set_random_seed(2)
    path = str(tmp_path_factory.mktemp("g") / "dcgan.keras")
    dcgan.build_generator(16, base_filters=4).save(path)
    return path


def reference_inputs(seed, resolution, noise):
    """Image `seed`'s inputs as README states them, drawn here: numpy's RandomState(seed),
    z (1, 100) first, then SL-StyleGAN's noise image (1, R, R, 1)."""
    draw = np.random.RandomState(seed)
    z = draw.standard_normal((1, 100)).astype("float32")
    if not noise:
        return [z]
    return [z, draw.standard_normal((1, resolution, resolution, 1)).astype("float32")]


def reference_pngs(path, folder, seeds, batch_size, truncation=None, normalize="none"):
    """The straightforward path, as generate.py wrote images before: batch by batch, the
    saved model (read with Keras, not generate.py) in a tf.function traced for that batch's
    shape (the mapping and synthesis networks called eagerly with truncation), mapped to
    uint8, then each image saved by Pillow in turn. (Graph and eager calls of DCGAN differ
    in the last float bits, its BatchNorm being fused in a graph, so the reference keeps
    the graph.)"""
    import keras
    import tensorflow as tf
    model = keras.models.load_model(path, compile=False)
    stylegan = len(model.inputs) == 2                     # [z, noise]; DCGAN takes z alone
    resolution = int(model.outputs[0].shape[1])
    value_range = (0.0, 1.0) if stylegan else (-1.0, 1.0)  # sigmoid / tanh outputs
    if truncation is not None:
        # the truncation centre: the mean style of 10,000 latents from RandomState(0)
        mapping = SL_StyleGAN.get_mapping(model)
        centre = np.random.RandomState(0).standard_normal((10000, 100)).astype("float32")
        w_avg = np.mean(mapping.predict(centre, batch_size=1000, verbose=0), axis=0)
    os.makedirs(folder)
    seeds = list(seeds)
    for i in range(0, len(seeds), batch_size):
        batch = seeds[i:i + batch_size]
        inputs = [np.concatenate(parts) for parts in
                  zip(*(reference_inputs(s, resolution, stylegan) for s in batch))]
        if truncation is None:
            out = tf.function(lambda x: model(x, training=False))(
                inputs if stylegan else inputs[0]).numpy()
        else:
            z, noise = inputs
            w = mapping(z, training=False).numpy()
            out = SL_StyleGAN.get_synthesis(model)(
                [w_avg + truncation * (w - w_avg), noise], training=False).numpy()
        images = minmax_to_uint8(out) if normalize == "minmax" else to_uint8(out, value_range)
        for s, image in zip(batch, images):
            Image.fromarray(image).save(os.path.join(folder, f"seed{s:04d}.png"))


def read_folder(folder):
    return {name: open(os.path.join(folder, name), "rb").read()
            for name in sorted(os.listdir(folder))}


@pytest.mark.parametrize("model, extra", [
    ("stylegan", []),
    ("stylegan", ["--truncation", "0.7"]),
    ("dcgan", ["--normalize", "minmax"]),
])
def test_fast_path_writes_the_reference_bytes(stylegan_file, dcgan_file, tmp_path, model,
                                              extra):
    path = stylegan_file if model == "stylegan" else dcgan_file
    out = str(tmp_path / "fast")
    # 7 images in batches of 3: two full batches and a shorter last one, one trace
    generate.main(["--run", path, "--n", "7", "--seed", "5", "--batch-size", "3",
                   "--out", out] + extra)
    truncation = float(extra[1]) if extra[:1] == ["--truncation"] else None
    normalize = extra[1] if extra[:1] == ["--normalize"] else "none"
    reference_pngs(path, str(tmp_path / "ref"), range(5, 12), 3, truncation, normalize)
    fast, ref = read_folder(out), read_folder(str(tmp_path / "ref"))
    assert sorted(fast) == [f"seed{s:04d}.png" for s in range(5, 12)]
    assert fast == ref


def test_one_trace_for_every_batch_size(stylegan_file):
    bundle = sampling.load_generator(stylegan_file)
    forward = writer_module.compiled_forward(bundle.model)
    for seeds in ([0, 1, 2], [3], [4, 5]):
        forward(*sampling.latent_inputs(bundle, seeds))
    assert forward.experimental_get_tracing_count() == 1


def test_writer_failure_is_one_line_error_and_leaves_no_partial_png(
        stylegan_file, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    real_save = Image.Image.save

    def failing_save(self, fp, *args, **kwargs):
        if "seed0004" in str(fp):  # half a file on disk, then the disk is full
            with open(fp, "wb") as f:
                f.write(b"\x89PNG\r\n")
            raise OSError(28, "No space left on device")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(generate.main, ["--run", stylegan_file, "--n", "12", "--batch-size", "3",
                                "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: cannot write {out / 'seed0004.png'}: No space left on device"]
    names = sorted(os.listdir(out))
    assert "seed0004.png" not in names
    assert all(n.startswith("seed") and n.endswith(".png") and ".tmp-" not in n
               for n in names)
    for name in names:  # every file left is a whole PNG
        with Image.open(out / name) as img:
            img.load()


def test_interrupted_run_leaves_whole_pngs_only(stylegan_file, tmp_path, monkeypatch):
    out = tmp_path / "out"
    batches = sampling.generate_images

    def interrupted(*args, **kwargs):
        for i, item in enumerate(batches(*args, **kwargs)):
            if i == 2:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(generate, "generate_images", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate.main(["--run", stylegan_file, "--n", "12", "--batch-size", "3",
                       "--out", str(out)])
    names = sorted(os.listdir(out))
    assert names and set(names) <= {f"seed{s:04d}.png" for s in range(6)}
    for name in names:
        with Image.open(out / name) as img:
            img.load()


def test_writer_bounds_its_queue_and_raises_a_failure(tmp_path):
    images = np.zeros((5, 4, 4, 3), np.uint8)
    w = writer_module.PngWriter(workers=2, max_batches=1)
    with w:
        for k in range(3):
            w.write(images, [str(tmp_path / f"b{k}_{i}.png") for i in range(5)])
            assert len(w._pending) <= w.max_chunks
    assert len(os.listdir(tmp_path)) == 15
    with pytest.raises(Exception, match="cannot write .*missing"):
        with writer_module.PngWriter(workers=2) as w:
            w.write(images, [str(tmp_path / "missing" / f"{i}.png") for i in range(5)])


def test_ahead_keeps_order_and_raises_where_it_failed():
    def fn(x):
        if x == 3:
            raise RuntimeError("boom")
        return x * 10
    got = []
    with pytest.raises(RuntimeError, match="boom"):
        for value in writer_module.ahead(fn, range(6)):
            got.append(value)
    assert got == [0, 10, 20]
