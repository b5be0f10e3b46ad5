"""The SQLite job store as domain verbs: transactions, jobs and units, ownership leases, results and
their index, runs, schema and migrations, backup. All SQL in batchkit lives here.

May import: :mod:`batchkit.core`, :mod:`batchkit.costs`, :mod:`batchkit.errors`.
"""
