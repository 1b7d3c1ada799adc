"""Errors a user can cause and fix: the CLI prints them as one line, never a traceback."""


class NnscratchError(Exception):
    """Base class for errors caused by bad input (files, arguments, data)."""


class DataError(NnscratchError, ValueError):
    """A data file or array is missing, malformed or inconsistent."""


class ModelFileError(NnscratchError, ValueError):
    """A file is not a valid nnscratch model."""


class TrainingDivergedError(NnscratchError, FloatingPointError):
    """The training loss became NaN or infinite."""
