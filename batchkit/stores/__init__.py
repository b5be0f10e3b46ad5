"""The SQLite job store as domain verbs: transactions, jobs and units, ownership leases, results and
their index, runs, schema and migrations, backup. All SQL in batchkit lives here.

:class:`batchkit.Store` (:mod:`.store`) is composed of one part per reason to change:
:mod:`.connection` (the connection, transactions and savepoints, SQLite's errors),
:mod:`.transaction` (the writing verbs of one transaction), :mod:`.jobs`, :mod:`.units`,
:mod:`.ownership` (claim, renew, release, take over; the rule in :mod:`.leases`), :mod:`.results`
(results and their index; :mod:`.digests`, the summary of stored keys that rules keys out in bulk),
:mod:`.runs`, :mod:`.schema` (migrations), :mod:`.storefile` (the
file), :mod:`.prune` and :mod:`.maintenance` (removing jobs). No ``sqlite3.Connection`` crosses
this folder's boundary: writes go through :meth:`Store.transaction` and its
:class:`~batchkit.stores.transaction.Transaction`.

May import: :mod:`batchkit.core`, :mod:`batchkit.costs`, :mod:`batchkit.errors`. The default
store's file depends on whether the server is the simulator, which the store does not ask: the
engine does (:mod:`batchkit.engine.locations`) and calls :func:`batchkit.stores.store.store_path`.
"""
