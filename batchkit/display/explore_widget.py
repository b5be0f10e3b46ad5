"""The explorer's panel: plain ipywidgets controls over the explorer's table, redrawn in place.

A thin view over :class:`batchkit.display.explore.Explorer`: each control calls
:meth:`~batchkit.display.explore.Explorer.set` and the table is drawn again from
:attr:`~batchkit.display.explore.Explorer.table`, so the panel shows what ``print(explorer)``
does. Only core ipywidgets (no JupyterLab-only extension), so it works in JupyterLab, Notebook 7
and the classic notebook alike; ipywidgets is imported only when a panel is wanted.
:func:`render_html` is the table as HTML, each figure marked with ``data-line``, ``data-mode``,
``data-figure`` and its exact ``data-value`` (what the browser test reads). It reads the explorer
through its members only (the explorer module imports this one).
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from .views import import_widgets

if TYPE_CHECKING:
    from .explore import Explorer

__all__ = ["ExplorerPanel", "render_html"]

_FIGURES = ("low", "typical", "high", "upper_bound")
_CELL = 'style="padding:2px 8px;text-align:{};white-space:nowrap"'


def render_html(explorer: Explorer) -> str:
    """The explorer's headline and table as HTML (pure)."""
    esc = html.escape
    rows = explorer.text_rows()
    head = "".join(f"<th {_CELL.format('left' if i < 3 else 'right')}>{esc(h)}</th>" for i, h in enumerate(rows[0]))
    table = explorer.table
    body = []
    offset = 2 if explorer.quality_label is not None else 0
    for ((name, mode), r), cells in zip(table.iterrows(), rows[1:], strict=True):
        tds = []
        for i, text in enumerate(cells):
            column = i - offset
            figure = _FIGURES[column - 3] if 3 <= column < 7 else None
            mark = ""
            if figure is not None:
                mark = f' data-figure="{figure}" data-value="{float(r[figure])!r}"'
            elif column == 7:
                mark = f' data-figure="finish" data-value="{float(r["finish_seconds"])!r}"'
            tds.append(f"<td {_CELL.format('left' if i < 3 else 'right')}{mark}>{esc(text)}</td>")
        style = ' style="font-weight:bold"' if r["runs"] else ""
        body.append(f'<tr data-line="{esc(str(name))}" data-mode="{esc(str(mode))}"{style}>{"".join(tds)}</tr>')
    why = next((r["why"] for _, r in table.iterrows() if r["why"]), "")
    headline = "<br>".join(esc(line) for line in explorer.headline())
    return (
        f'<div class="batchkit-explorer" data-rows="{explorer.settings.rows}"><b>Explorer</b>'
        f'<div style="font-size:90%">{headline}</div>'
        f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        f'<div style="font-size:90%">{esc(why)}</div></div>'
    )


class ExplorerPanel:
    """The controls and the table; ``.widget`` is what a notebook displays."""

    def __init__(self, explorer: Explorer) -> None:
        w = import_widgets()
        self.explorer = explorer
        self._syncing = False
        s = explorer.settings
        layout = {"description_width": "initial"}
        self.controls: dict[str, Any] = {
            "rows": w.IntText(value=s.rows, description="rows", style=layout),
            "rows_log": w.FloatLogSlider(
                value=s.rows,
                base=10,
                min=0,
                max=math.log10(explorer.MAX_ROWS),
                step=0.05,
                readout=False,
                continuous_update=False,
                layout=w.Layout(width="260px"),
            ),
            "mode": w.Dropdown(options=list(explorer.SEND_MODES), value=s.mode, description="mode", style=layout),
            "caching": w.Dropdown(options=list(explorer.CACHING), value=s.caching, description="caching", style=layout),
            "ttl": w.Dropdown(options=["5m", "1h"], value=s.ttl, description="cache TTL", style=layout),
            "hit_rate": w.FloatRangeSlider(
                value=self._hit_range(),
                min=0.0,
                max=1.0,
                step=0.01,
                description="hit rate",
                continuous_update=False,
                layout=w.Layout(width="420px"),
            ),
            "hit_auto": w.Checkbox(value=s.hit_rate is None, description="from priming and size", indent=False),
            "output_tokens": w.IntText(value=self._typical(), description="output tokens", style=layout),
            "output_auto": w.Checkbox(value=s.output_tokens is None, description="the estimate's", indent=False),
            "deadline_hours": w.FloatText(
                value=s.deadline_hours or 0.0, description="deadline (h, 0: none)", style=layout
            ),
        }
        if explorer.models:
            self.controls["model"] = w.Dropdown(options=list(explorer.models), value=s.model, description="model")
        self.table = w.HTML(value=render_html(explorer))
        self.error = w.HTML(value="")
        for name, control in self.controls.items():
            control.observe(self._changed(name), names="value")
        c = self.controls
        rows = [
            w.HBox([c[k] for k in ("model", "mode", "caching", "ttl") if k in c]),
            w.HBox([c["rows"], c["rows_log"], c["deadline_hours"]]),
            w.HBox([c["output_tokens"], c["output_auto"], c["hit_rate"], c["hit_auto"]]),
        ]
        self.widget = w.VBox([*rows, self.error, self.table])
        self.widget.add_class("batchkit-explorer-panel")
        explorer.on_change(lambda _e: self.refresh())

    def _hit_range(self) -> tuple[float, float]:
        s = self.explorer.settings
        return s.hit_rate if s.hit_rate is not None else self.explorer.priced(self.explorer.lines()[0]).hit_rate

    def _typical(self) -> int:
        s = self.explorer.settings
        return s.output_tokens or self.explorer.priced(self.explorer.lines()[0]).typical_output_tokens

    def _changed(self, name: str) -> Any:
        def on_change(change: dict[str, Any]) -> None:
            if self._syncing:
                return
            value = change["new"]
            if name == "rows_log":
                name_, value = "rows", round(value)
            elif name == "hit_auto":
                name_, value = "hit_rate", None if value else self.controls["hit_rate"].value
            elif name == "output_auto":
                name_, value = "output_tokens", None if value else self.controls["output_tokens"].value
            elif name == "deadline_hours":
                name_, value = name, value or None
            else:
                name_ = name
            try:
                self.explorer.set(**{name_: value})
            except Exception as exc:  # shown in the panel: a callback's exception would vanish into the log
                self.error.value = f'<div style="color:#b00">{html.escape(str(exc))}</div>'
                self.refresh(keep_error=True)

        return on_change

    def refresh(self, *, keep_error: bool = False) -> None:
        """Redraw the table and put every control at the explorer's settings."""
        s = self.explorer.settings
        values = {
            "rows": s.rows,
            "rows_log": float(s.rows),
            "mode": s.mode,
            "caching": s.caching,
            "ttl": s.ttl,
            "hit_rate": self._hit_range(),
            "hit_auto": s.hit_rate is None,
            "output_tokens": self._typical(),
            "output_auto": s.output_tokens is None,
            "deadline_hours": s.deadline_hours or 0.0,
            "model": s.model,
        }
        self._syncing = True
        try:
            for name, control in self.controls.items():
                if control.value != values[name]:
                    control.value = values[name]
        finally:
            self._syncing = False
        if not keep_error:
            self.error.value = ""
        self.table.value = render_html(self.explorer)
