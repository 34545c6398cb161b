"""The one error type of the harness: bad user input (an unknown name, a malformed or
invalid value, a missing or corrupt file). `harness.cli` prints it as one line on stderr
and exits with code 2, before anything is written to the results tree."""


class ConfigError(ValueError):
    """Bad user input: reported as one line on stderr with exit code 2."""
