"""Kept so ``batchkit.media`` (the path the notebooks and older code use) still works: the module is
:mod:`batchkit.core.media`."""

from .core.media import *  # noqa: F403
from .core.media import __all__  # noqa: F401
