"""What a person sees: the progress snapshot → text / HTML / ipywidgets, the job listing's views,
and the plots (``ax=None`` → a new Axes; every plot takes a cost object and draws it).

May import: :mod:`batchkit.core`, :mod:`batchkit.costs`, :mod:`batchkit.stores`,
:mod:`batchkit.engine`, :mod:`batchkit.backends` (the queue's view), :mod:`batchkit.errors`.
"""
