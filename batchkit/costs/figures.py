"""Where a cost object's ``.plot()`` finds the figure that draws it (and ``.explore()`` its explorer), so
that costs never import the display.

Cost objects hold numbers and never draw (the display takes a cost object and draws it), yet
``estimate.plot()`` and ``job.cost.plot()`` are what a notebook user reaches for. The dependency
points one way: :mod:`batchkit.display.plots` imports the cost objects and, when it is imported,
registers here the function that draws each kind; ``.plot()`` looks the figure up here. ``import
batchkit`` imports the display's plots (their names are public), and importing any
``batchkit.costs`` module runs ``batchkit/__init__`` first, so the figures are in place before a
cost object exists. A lazy import of the display from ``.plot()`` would close an import cycle
(display → costs → display) and break the seam rule that costs import nothing but the core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["Figure", "View", "draw", "register", "register_view", "view"]

Figure = Literal["estimate", "estimate_vs_actual"]
"""The figures a cost object can ask for: an estimate's ranges per mode; an estimate against the actual cost."""

_FIGURES: dict[str, Callable[..., Axes]] = {}


def register(figure: Figure, draw: Callable[..., Axes]) -> None:
    """Make ``draw(subject, *args, **kwargs) -> Axes`` the function that draws ``figure``."""
    _FIGURES[figure] = draw


def draw(figure: Figure, subject: Any, *args: Any, **kwargs: Any) -> Axes:
    """Draw ``subject`` with the function registered for ``figure``; returns its Axes."""
    try:
        drawer = _FIGURES[figure]
    except KeyError:
        raise RuntimeError(
            f"no function draws the {figure!r} figure: import batchkit.display.plots (import batchkit does)"
        ) from None
    return drawer(subject, *args, **kwargs)


View = Literal["explorer"]
"""The interactive views a cost object can ask for: an estimate's explorer (``estimate.explore()``)."""

_VIEWS: dict[str, Callable[..., Any]] = {}


def register_view(name: View, make: Callable[..., Any]) -> None:
    """Make ``make(subject, **kwargs)`` the function that builds the view ``name`` (the display does this)."""
    _VIEWS[name] = make


def view(name: View, subject: Any, **kwargs: Any) -> Any:
    """The view ``name`` of ``subject``, built by the function the display registered."""
    try:
        make = _VIEWS[name]
    except KeyError:
        raise RuntimeError(
            f"no function builds the {name!r} view: import batchkit.display.explore_sources (import batchkit does)"
        ) from None
    return make(subject, **kwargs)
