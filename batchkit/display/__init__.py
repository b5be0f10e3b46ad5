"""What a person sees: a job's progress as text, HTML and a live ipywidgets widget, a partitioned
run's view, the processing queue's view, and the plots (``ax=None`` → a new Axes; every plot
takes a cost object and draws it).

============  ===============================================================================
snapshot      what a job's progress is: the :class:`Snapshot` and its derived figures (pure)
reader        :func:`snapshot`: reading that from a job and its store, cheaply, every second
text          :func:`render_line` and :func:`render_text` (pure)
html_view     :func:`render_html`: what ``Job._repr_html_`` shows (pure)
progress      gathers the four above: the documented import path
views         the live views of a job (widget, text lines), their refresh thread; ipywidgets is
              imported only when a widget is wanted, never by ``import batchkit``
runs          a partitioned run's view (text lines or an HTML widget)
queues        the store's batches beside the workspace's processing-queue view
plots         matplotlib views of cost objects
============  ===============================================================================

May import: :mod:`batchkit.core`, :mod:`batchkit.costs`, :mod:`batchkit.stores`,
:mod:`batchkit.engine`, :mod:`batchkit.backends` (the queue's view), :mod:`batchkit.errors`.
The arrow runs one way: the display reads a job or a run through its public members, and the
engine is not to import the display (a job's ``_repr_html_`` and a run's live view are drawn here).
"""
