"""What the command-line scripts share: one set of flag validators (argparse `type=`
functions, so every check happens while parsing, before any data is decoded) and a parser
whose errors are one line and exit code 2."""
import argparse
import sys


class Parser(argparse.ArgumentParser):
    """argparse with errors as one line, `error: ...`, and exit code 2 (no usage block)."""

    def error(self, message):
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None


def positive_int(text):
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def non_negative_int(text):
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or positive, got {value}")
    return value


def positive_float(text):
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value:g}")
    return value


def non_negative_float(text):
    value = _number(text, float)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or positive, got {value:g}")
    return value


def unit_interval(text):
    """A number in [0, 1): a decay, a probability."""
    value = _number(text, float)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value:g}")
    return value


def fraction(text):
    """A share strictly between 0 and 1: a split's test or validation fraction."""
    value = _number(text, float)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value:g}")
    return value


def keep_count(text):
    """--keep-checkpoints: a positive count, or 'all' (also 0): keep every checkpoint."""
    if text.strip().lower() == "all":
        return 0
    return non_negative_int(text)
