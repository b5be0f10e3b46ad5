"""The old path of rendering, keying and planning, kept for importers outside the core.

Rows → request params → content keys → batch chunks now lives in three modules, one reason to
change each: :mod:`batchkit.core.render` (prompt → each row's user content, media parts
included), :mod:`batchkit.core.keys` (the request key: content hash, cache markers left out)
and :mod:`batchkit.core.plan` (params serialized once, rows keyed and deduplicated, batches cut
within the API's limits). Import from those; this module only re-exports them until the
integration moves its importers (``batchkit.engine.jobs``, ``batchkit.engine.calls``,
``batchkit.engine.hedge``, ``batchkit.stores.schema``, ``batchkit.frontends.polars`` and a few
tests).
"""

from __future__ import annotations

# re-exports: importers move in the integration
from .keys import params_key as params_key
from .keys import request_key as request_key
from .keys import unmarked_params as unmarked_params
from .plan import MAX_BATCH_BYTES as MAX_BATCH_BYTES
from .plan import MAX_BATCH_REQUESTS as MAX_BATCH_REQUESTS
from .plan import Chunk as Chunk
from .plan import MediaLines as MediaLines
from .plan import Plan as Plan
from .plan import RequestTemplate as RequestTemplate
from .plan import build_template as build_template
from .plan import chunk_requests as chunk_requests
from .plan import line_body as line_body
from .plan import make_line as make_line
from .plan import plan_requests as plan_requests
from .plan import select_lines as select_lines
from .render import MEDIA_SPECS as MEDIA_SPECS
from .render import Rendered as Rendered
from .render import parse_prompt as parse_prompt
from .render import render_prompts as render_prompts

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_REQUESTS",
    "MEDIA_SPECS",
    "Chunk",
    "MediaLines",
    "Plan",
    "RequestTemplate",
    "build_template",
    "chunk_requests",
    "line_body",
    "make_line",
    "params_key",
    "parse_prompt",
    "plan_requests",
    "render_prompts",
    "request_key",
    "select_lines",
    "unmarked_params",
]
