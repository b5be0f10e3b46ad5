"""The SQLite job store as domain verbs: transactions, jobs and units, ownership leases, results and
their index, runs, schema and migrations, backup. All SQL in batchkit lives here.

:class:`batchkit.Store` (:mod:`.store`) is composed of one part per reason to change:
:mod:`.connection` (the connection, transactions and savepoints, SQLite's errors),
:mod:`.transaction` (the writing verbs of one transaction), :mod:`.jobs`, :mod:`.units`,
:mod:`.ownership` (claim, renew, release, take over; the rule in :mod:`.leases`), :mod:`.results`
(results and their index), :mod:`.runs`, :mod:`.schema` (migrations), :mod:`.storefile` (the
file), :mod:`.prune` and :mod:`.maintenance` (removing jobs). No ``sqlite3.Connection`` crosses
this folder's boundary except through the older ``atomic()``/``*_in(conn, …)`` methods, kept until
the engine has moved to :meth:`Store.transaction`.

May import: :mod:`batchkit.core`, :mod:`batchkit.costs`, :mod:`batchkit.errors`. (One temporary
exception, marked in :func:`batchkit.stores.store._simulated`: the default store's location still
asks :mod:`batchkit.backends` whether the server is the simulator, until the engine asks it and
calls :func:`batchkit.stores.store.store_path`.)
"""
