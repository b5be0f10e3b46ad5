"""The core: pure functions and values, no I/O.

Owns prompt rendering, content keys and fingerprints, planning and chunking, the call's options
(the only validator of a call's arguments), results → columns, structured outputs, media, and the
vocabulary of states and modes.

May import: nothing of batchkit outside ``core`` but :mod:`batchkit.errors`.
"""
