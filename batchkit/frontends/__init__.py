"""Front ends: one thin adapter per DataFrame library over the core, which reads columns.

A front end turns its library's table into what the core takes — a pandas DataFrame or a mapping
of column name → values (:mod:`batchkit.core.columns`) — calls :func:`batchkit.engine.calls.prepare` and
:func:`batchkit.engine.calls.submit` (or, a partition at a time, :mod:`batchkit.engine.runs`; for a
streaming engine, :mod:`batchkit.engine.pipeline`), and builds its own typed columns from each
row's answer and status (:meth:`batchkit.Job.answers`, :meth:`batchkit.Job.statuses`). It keeps
no state of its own and never talks to the API or the store itself.

To add one: a module here named after its library (``frontends/pandas.py`` is the model), which
registers the ``claude`` namespace through the library's own extension API when imported, and an
import of it in ``batchkit/__init__.py`` — for an optional library,
``batchkit.frontends._hooks.when_imported("polars", "batchkit.frontends.polars")``, which imports the front
end as soon as the library is imported (at once if it already is), so ``import batchkit`` never
imports the library itself. Front ends import the core; nothing in the core imports a front end
(``tests/test_layout.py`` checks both).
"""
