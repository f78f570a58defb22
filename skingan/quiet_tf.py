"""Import TensorFlow without its start-up noise, and say in one line what it will run on.

Importing TensorFlow 2.21 prints, before its own log settings apply, absl's "All log
messages before absl::InitializeLog() ..." line, the oneDNN notice and "Could not find cuda
drivers" (each twice: two of its libraries print them), and looking for GPUs on a machine
without a driver logs "failed call to cuInit ... UNKNOWN ERROR (303)". None of them can be
switched off by an environment variable (TF_CPP_MIN_LOG_LEVEL=3 would also hide real
errors). So `import_tensorflow` points file descriptor 2 at a temporary file for the import
and the first device query only, puts it back right after, and writes back every captured
line except those known to be harmless. A real error (a broken CUDA install, a failed
import) is still shown, and later errors are never touched.

The scripts call `import_tensorflow()` before anything else imports TensorFlow.
"""
import os
import sys
import tempfile

# Start-up lines that are printed on every machine and mean nothing to fix.
HARMLESS = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine, GPU will not be used",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
)
NO_DRIVER = "Could not find cuda drivers"
CUINIT_FAILED = "failed call to cuInit"


def keep_line(line, no_driver):
    """Whether a captured start-up line is worth showing. cuInit's failure is expected
    (and dropped) only where TensorFlow found no CUDA driver at all."""
    if any(text in line for text in HARMLESS):
        return False
    return not (no_driver and CUINIT_FAILED in line)


def shown_lines(captured):
    """The captured text's lines that keep_line keeps."""
    lines = captured.splitlines()
    no_driver = any(NO_DRIVER in line for line in lines)
    return [line for line in lines if line.strip() and keep_line(line, no_driver)]


def device_banner(gpus):
    """'device: CPU only (no GPU found)' or 'device: 1 GPU (name)'."""
    if not gpus:
        return "device: CPU only (no GPU found)"
    import tensorflow as tf
    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
             for g in gpus]
    return f"device: {len(gpus)} GPU{'s' if len(gpus) > 1 else ''} ({', '.join(names)})"


def import_tensorflow(log=print):
    """Import TensorFlow (quietly, the first time), log the device banner, return tf."""
    if "tensorflow" in sys.modules:
        import tensorflow as tf
        log(device_banner(tf.config.list_physical_devices("GPU")))
        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # INFO and WARNING off for good
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf
            gpus = tf.config.list_physical_devices("GPU")   # where cuInit is called
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in shown_lines(capture.read().decode("utf-8", "replace")):
                print(line, file=sys.stderr)
    log(device_banner(gpus))
    return tf
