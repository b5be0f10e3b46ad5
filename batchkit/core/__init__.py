"""The core: pure functions and values, no I/O.

Owns prompt rendering (``render``), content keys and fingerprints (``keys``), planning and chunking
(``plan``; the same a column at a time for text Arrow holds: ``bulk``), the call's options — the only
validator of a call's arguments (``options``, with the Messages params in ``params`` and the value
checks in ``_checks``) — the model catalogue the options
check against (``models``: ids, aliases, output caps; the dollars are :mod:`batchkit.costs.prices`'),
results → columns, structured outputs, media, and the vocabulary of states and modes (``states``).

May import: nothing of batchkit outside ``core`` but :mod:`batchkit.errors`.
"""
