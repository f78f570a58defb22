"""The one exception type for input a user can fix, the checks that raise it, and the CLI
wrapper that reports it.

Library code raises ``UserError`` (or a subclass) with a one-line message; the scripts'
``main`` is run through ``run_cli``, which prints ``error: <message>`` and exits with
code 2 instead of showing a traceback. A Ctrl-C that reaches it (one while TensorFlow
loads, say) is one line and exit code 130 too, as the shell's own convention (128 + SIGINT).
"""
import numbers
import sys


class UserError(ValueError):
    """Bad input: a missing path, an unknown class, an unsupported resolution..."""


def check_resolution(family, resolution, allowed):
    """Return ``resolution`` as an int, or raise UserError naming the allowed values."""
    if (isinstance(resolution, bool)
            or not isinstance(resolution, numbers.Integral)  # ints, numpy ints; not 256.0
            or int(resolution) not in allowed):
        raise UserError(f"{family} resolution must be a power of two from {min(allowed)} to "
                        f"{max(allowed)} ({', '.join(map(str, allowed))}), got {resolution!r}")
    return int(resolution)


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


INTERRUPTED = "interrupted"


def run_cli(main, argv=None, interrupted=INTERRUPTED):
    """Run ``main(argv)``; turn a UserError into a one-line message and exit code 2, and a
    KeyboardInterrupt into the line ``interrupted`` and exit code 130."""
    try:
        return main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)   # after the terminal's ^C
        sys.exit(130)
