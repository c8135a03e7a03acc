"""One error family for the whole library.

Every error that a user's input can cause (a file, a manifest row, a bundle, a configuration value, the arrays given
to a statistic) is a :class:`NodescopeError`. Its message names the culprit -- the file, row, column, key or value and
what was expected -- and never a command-line flag: the library does not know how it was called. The command line
maps the family to a one-line message and exit code 2; any other exception is a bug and surfaces as one (exit 1).

Each class also derives from the built-in exception a Python caller would catch for the same fault (``ValueError``
for bad values, ``FileNotFoundError`` for a missing file, ``FileExistsError`` for an output that exists), so code
written against the built-ins keeps working.

::

    NodescopeError
    +-- DataError (ValueError)              manifest, images, splits files, clinical tables
    +-- BundleError (ValueError)            model.json / weights of a model bundle
    +-- ConfigError (ValueError)            run configurations and option values
    +-- StatisticsInputError (ValueError)   predictions, arrays and study tables given to statistics
    +-- MissingFileError (FileNotFoundError)
    +-- OutputExistsError (FileExistsError)
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "ConfigError",
    "DataError",
    "MissingFileError",
    "NodescopeError",
    "OutputExistsError",
    "StatisticsInputError",
]


class NodescopeError(Exception):
    """Base of every error caused by what a user gave nodescope (the message says which file, row, key or value)."""


class DataError(NodescopeError, ValueError):
    """Input data that cannot be used: a manifest, an image, a splits file, a clinical table."""


class BundleError(NodescopeError, ValueError):
    """A model bundle that cannot be loaded or does not fit its description (model.json, weights)."""


class ConfigError(NodescopeError, ValueError):
    """A configuration or option value outside what is allowed."""


class StatisticsInputError(NodescopeError, ValueError):
    """Predictions, arrays or study tables that a statistic cannot be computed from."""


class MissingFileError(NodescopeError, FileNotFoundError):
    """A file or folder that must exist does not."""


class OutputExistsError(NodescopeError, FileExistsError):
    """An output would replace an existing file or folder (or an input) without being told to."""
