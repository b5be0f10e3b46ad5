"""Where the default job store is: the store's folder rule, with the server asked whether it is the simulator.

Calls answered by batchkit's simulator get a store of their own (``simulator.sqlite3``): its
answers are canned, and a real call with the same content must never be answered from them.
Which file a call uses therefore depends on its server, and asking a server is the engine's
business (it owns the clients), not the store's: :mod:`batchkit.stores` keeps the folder rule
(:func:`batchkit.stores.store.store_path`, which takes the answer as an argument) and this module
asks. Importing it also hands :func:`default_store_path` to the store, so ``Store()`` with no path
opens the same default store (:func:`batchkit.stores.store.locate_default_with`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from batchkit.backends.clients import get_default_client, is_simulator, url_is_simulator
from batchkit.errors import ServerUnreachableError
from batchkit.stores.store import locate_default_with, store_path

__all__ = ["default_store_path"]


def default_store_path(client: Any = None) -> Path:
    """:func:`~batchkit.stores.store.store_path` for ``client`` — else the default client, else
    ``ANTHROPIC_BASE_URL`` — asking its server whether it is the simulator (never guessed from a
    host name: a gateway to the real API on 127.0.0.1 gets the real store). ``BATCHKIT_STORE``
    wins without asking anything.

    Raises:
        ServerUnreachableError: ``client`` was given and its server does not answer.
    """
    env = os.environ.get("BATCHKIT_STORE")
    if env:
        return Path(env).expanduser()
    return store_path(simulated=_simulated(client))


def _simulated(client: Any = None) -> bool:
    """Whether calls go to the simulator: ``client``'s, the default client's or the
    environment's server says so. Without a client of the caller's, a server that does not
    answer counts as the real API (it answers nothing either way; asked again next time)."""
    if client is not None:
        return is_simulator(client)
    try:
        client = get_default_client()
        if client is not None:
            return is_simulator(client)
        url = os.environ.get("ANTHROPIC_BASE_URL")
        return url_is_simulator(url) if url else False
    except ServerUnreachableError:
        return False


locate_default_with(default_store_path)
