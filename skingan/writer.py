"""generate.py's fast path: one compiled forward pass, inputs drawn ahead, PNGs written on a
thread pool while the next batch computes.

    forward = compiled_forward(model)          # one trace, whatever the batch size
    for seeds, inputs in ahead(draw, batches):  # draw(batch) runs in a background thread
        ...
    with PngWriter() as writer:                 # encode + write on threads, bounded
        writer.write(uint8_images, paths)       # returns at once unless too much is queued

The images are the same arrays, and so the same PNG bytes, as writing them one by one with
images.save_png: the forward pass is the same graph, each image still depends only on its
own inputs, and each file is written through the same atomic helper (fileio.atomic_path),
so a run that is interrupted or fails leaves whole PNGs or none, never half of one.
"""
import collections
import concurrent.futures
import os
import queue
import threading

from skingan.errors import UserError
from skingan.images import save_png


def compiled_forward(model):
    """model(inputs, training=False) as a tf.function with a fixed input signature (any batch
    size), so there is one trace for every batch, the last, shorter one included."""
    import tensorflow as tf
    specs = [tf.TensorSpec((None,) + tuple(t.shape[1:]), t.dtype) for t in model.inputs]
    if len(specs) == 1:
        return tf.function(lambda x: model(x, training=False), input_signature=specs,
                           autograph=False)
    return tf.function(lambda *xs: model(list(xs), training=False), input_signature=specs,
                       autograph=False)


def ahead(fn, items, depth=1):
    """Yield fn(item) for each item in order, computing up to `depth` results ahead in a
    background thread (numpy's random draws run there while the main thread computes).
    An exception in fn is raised here, at the item it belongs to."""
    results = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in items:
                if stop.is_set():
                    return
                results.put((True, fn(item)))
        except BaseException as err:  # handed to the consumer, raised there
            results.put((False, err))
            return
        results.put((True, done))

    thread = threading.Thread(target=produce, name="draw-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, value = results.get()
            if not ok:
                raise value
            if value is done:
                return
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                results.get(timeout=0.05)
            except queue.Empty:
                pass


def _write_chunk(images, paths):
    for image, path in zip(images, paths):
        try:
            save_png(image, path)
        except Exception as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else err
            raise UserError(f"cannot write {path}: {reason}") from err


class PngWriter:
    """Encode and write uint8 (H, W, 3) images as PNG files on a pool of threads.

    write(images, paths) splits a batch into one chunk per thread and returns at once,
    unless more than `max_batches` batches are still being written: then it waits for the
    oldest, so memory stays bounded whatever the number of images. Pillow's encoder and the
    file writes release the GIL, so they run beside the next batch's forward pass.

    A failure in a writer thread (a full disk, a folder that went away) is raised as a
    UserError naming the file, by the next write() or by close(); nothing more is written
    after it. Leaving the with-block on an exception (Ctrl+C) cancels what has not started
    and waits for the files being written, each of which is whole or absent (atomic writes).
    """

    def __init__(self, workers=None, max_batches=2):
        self.workers = max(1, workers or min(4, os.cpu_count() or 1))
        self.max_chunks = max(1, max_batches) * self.workers
        self._pool = concurrent.futures.ThreadPoolExecutor(self.workers,
                                                           thread_name_prefix="png-writer")
        self._pending = collections.deque()

    def write(self, images, paths):
        if len(images) != len(paths):
            raise ValueError(f"{len(images)} images for {len(paths)} paths")
        self._raise_failed()
        per = -(-len(paths) // self.workers)
        for i in range(0, len(paths), per):
            self._pending.append(self._pool.submit(_write_chunk, images[i:i + per],
                                                   paths[i:i + per]))
        while len(self._pending) > self.max_chunks:
            self._pending.popleft().result()

    def _raise_failed(self):
        """Raise the error of a chunk that already failed, if any."""
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()
        for future in self._pending:
            if future.done() and future.exception() is not None:
                future.result()

    def close(self, cancel=False):
        """Wait for every queued write (raise the first failure), or with cancel=True drop
        the writes that have not started and wait only for those under way."""
        try:
            if cancel:
                for future in self._pending:
                    future.cancel()
            else:
                while self._pending:
                    self._pending[0].result()
                    self._pending.popleft()
        finally:
            if cancel or self._pending:
                for future in self._pending:
                    future.cancel()
            self._pool.shutdown(wait=True)
            self._pending.clear()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(cancel=exc_type is not None)
        return False
