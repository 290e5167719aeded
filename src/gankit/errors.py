"""User-facing errors: the CLI prints these as one line (`error: ...`) and exits with code 2."""


class GankitError(Exception):
    """Bad input from the user: a path, a config key, a checkpoint. The message names the problem."""


class ConfigError(GankitError):
    pass


class DataError(GankitError):
    pass


class CheckpointError(GankitError):
    pass


class TrainingDiverged(GankitError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""
