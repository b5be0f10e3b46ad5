"""Kept so ``batchkit.pricing`` (the path the notebooks and older code use) still works: the module is
:mod:`batchkit.costs.pricing`."""

from .costs.pricing import *  # noqa: F403
from .costs.pricing import __all__  # noqa: F401
