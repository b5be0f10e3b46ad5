"""``python -m batchkit …``: the same as the ``batchkit`` console script."""

from .cli import main

raise SystemExit(main())
