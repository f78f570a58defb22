"""The one exception type for input a user can fix, and the CLI wrapper that reports it.

Library code raises ``UserError`` (or a subclass) with a one-line message; the scripts'
``main`` is run through ``run_cli``, which prints ``error: <message>`` and exits with
code 2 instead of showing a traceback.
"""
import sys


class UserError(ValueError):
    """Bad input: a missing path, an unknown class, an unsupported resolution..."""


def run_cli(main, argv=None):
    """Run ``main(argv)``; turn a UserError into a one-line message and exit code 2."""
    try:
        return main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
