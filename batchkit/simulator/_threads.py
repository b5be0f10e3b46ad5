"""Threads (beta): conversation state the server holds between ``/v1/messages`` calls.

``thread: {"type": "create"}`` asks the server to hold the conversation under the response's
``id``; ``thread: {"type": "continue", "previous_message_id": id}`` sends only the new turn's
messages and is answered as if the whole history had been sent (input tokens included), with
the ``system`` and ``tools`` the thread was created with — repeating them on a ``continue`` is a
400, as on the API. The SDK's tool runner (``client.beta.messages.tool_runner``) and
``client.beta.messages.thread`` work this way. The simulator keeps each thread's messages (the
history, the turn, the assistant's answer) under the answer's id, the newest :data:`MAX_HELD`
answers at most. A ``continue`` from an id it does not hold is 404 ``not_found_error`` with
``error.details.error_code: "thread_not_found"``, on which the SDK replays the whole history
under a new thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from ._params import ApiError

__all__ = ["MAX_HELD", "ThreadNotFound", "Threads"]

MAX_HELD = 10_000
"""How many answers' conversations the simulator holds at most."""


_HELD_FIELDS = ("system", "tools")
"""Request fields a thread keeps from its first turn (a ``continue`` may not send them)."""


def _bad(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


class ThreadNotFound(ApiError):
    """A ``continue`` from an answer no thread holds (404, ``error_code: thread_not_found``)."""

    def __init__(self, previous: str) -> None:
        super().__init__(404, "not_found_error", f"thread.previous_message_id: no thread holds a message {previous!r}")
        self.details = {"error_code": "thread_not_found"}


class Threads:
    """The held conversations, by the id of their latest answer. Thread-safe."""

    def __init__(self) -> None:
        self._held: OrderedDict[str, tuple[list, dict]] = OrderedDict()
        self._lock = threading.Lock()

    def expand(self, params: Any) -> Any:
        """``params`` as the model sees them: a ``continue`` gets its history put before its
        messages. Anything without ``thread`` is returned as is."""
        if type(params) is not dict or "thread" not in params:
            return params
        thread = params["thread"]
        if thread is None:
            return params
        kind = thread.get("type") if isinstance(thread, dict) else None
        if kind == "create":
            return params
        if kind != "continue":
            raise _bad("thread.type: Input should be 'create' or 'continue'")
        previous = thread.get("previous_message_id")
        if not isinstance(previous, str) or not previous:
            raise _bad("thread.previous_message_id: Field required")
        messages = params.get("messages")
        if not isinstance(messages, list):
            return params  # the params check names the problem
        for field in _HELD_FIELDS:
            if field in params:
                raise _bad(
                    f"{field}: a thread keeps the {field} it was created with; leave it out "
                    "of a continue (or start a new thread to change it)"
                )
        with self._lock:
            held = self._held.get(previous)
        if held is None:
            raise ThreadNotFound(previous)
        history, fields = held
        return {**params, **fields, "messages": [*history, *messages]}

    def keep(self, params: Any, message_id: str, content: list) -> None:
        """Hold the conversation of an answered threaded request under ``message_id``."""
        if type(params) is not dict or not params.get("thread"):
            return
        conversation = [*params["messages"], {"role": "assistant", "content": content}]
        fields = {field: params[field] for field in _HELD_FIELDS if field in params}
        with self._lock:
            self._held[message_id] = (conversation, fields)
            while len(self._held) > MAX_HELD:
                self._held.popitem(last=False)
