"""Kept so ``batchkit.plots`` (the path the notebooks and older code use) still works: the module is
:mod:`batchkit.display.plots`."""

from .display.plots import *  # noqa: F403
from .display.plots import __all__  # noqa: F401
