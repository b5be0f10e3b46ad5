"""The arguments of ``df.claude.compare`` that are its own (models, prompts, sample, target, task, seed),
checked before anything is sent. The Messages params and batchkit options the call passes on are
checked by :class:`batchkit.core.options.Options`, as for every other call; the truth column by
:mod:`batchkit.compare.truth`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from batchkit.errors import InvalidOptionError, OptionTypeError, UnknownOptionError

__all__ = ["TASKS", "Task", "check_call", "check_models", "check_prompts", "check_sample", "check_seed", "check_target"]

Task = Literal["batch", "classify", "extract"]
TASKS: tuple[str, ...] = ("batch", "classify", "extract")


def check_call(frame: Any, task: str, labels: Any, schema: Any, kwargs: Mapping[str, Any]) -> None:
    """Refuse a call that is not a comparison of a non-empty frame under one known task."""
    if not isinstance(frame, pd.DataFrame):
        raise OptionTypeError(f"compare needs a DataFrame, not {type(frame).__name__}", option="frame")
    if len(frame) == 0:
        raise InvalidOptionError(
            "the frame has no rows, so there is no sample to compare on: compare a frame "
            "with rows (did a filter above remove them all?)",
            option="frame",
        )
    if task not in TASKS:
        raise InvalidOptionError(f"task must be one of {', '.join(map(repr, TASKS))}, not {task!r}", option="task")
    if task == "batch" and (labels is not None or schema is not None):
        raise InvalidOptionError(
            "labels= and schema= are for task='classify' and task='extract'; pass the task too", option="task"
        )
    if task == "classify" and labels is None:
        raise InvalidOptionError("task='classify' needs labels=[...]", option="labels")
    if task == "extract" and schema is None:
        raise InvalidOptionError("task='extract' needs schema= (a pydantic model or {name: type})", option="schema")
    if "model" in kwargs:
        raise UnknownOptionError("compare takes models=[...] (a list), not model=", option="model", suggestion="models")


def check_seed(seed: Any) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise OptionTypeError(f"seed must be a whole number, not {seed!r:.60}", option="seed")
    return int(seed)


def check_models(models: Any) -> list[str]:
    if isinstance(models, str):
        models = [models]
    if not isinstance(models, Sequence) or not models:
        raise OptionTypeError(
            f"models must be a list of model ids such as ['claude-haiku-4-5', 'claude-sonnet-4-6'], not {models!r:.80}",
            option="models",
        )
    checked: list[str] = list(models)
    for m in checked:
        if not isinstance(m, str) or not m.strip():
            raise OptionTypeError(f"models must hold model id strings, not {m!r:.60}", option="models")
    if len(set(checked)) != len(checked):
        raise InvalidOptionError(f"models lists a model twice ({checked}); name each once", option="models")
    return checked


def check_prompts(prompt: Any, prompts: Any) -> dict[str, Any]:
    named: dict[str, Any] = {"p1": prompt}
    if prompts is None:
        return named
    if isinstance(prompts, str) or callable(prompts):
        prompts = [prompts]
    if isinstance(prompts, Mapping):
        items = [(str(k), p) for k, p in prompts.items()]
    elif isinstance(prompts, Sequence):
        items = [(f"p{i}", p) for i, p in enumerate(prompts, start=2)]
    else:
        raise OptionTypeError(
            f"prompts must be a list of other prompt templates (or {{name: template}}), not {type(prompts).__name__}",
            option="prompts",
        )
    for name, p in items:
        if not (isinstance(p, str) or callable(p)):
            raise OptionTypeError(
                f"prompts[{name!r}] must be a template string or a callable row -> str, not {type(p).__name__}",
                option="prompts",
            )
        if name in named or p in named.values():
            raise InvalidOptionError(
                f"prompts repeats a prompt or a name ({name!r}); give each variant once", option="prompts"
            )
        named[name] = p
    return named


def check_sample(sample: Any, n: int) -> int:
    if isinstance(sample, (bool, np.bool_)) or not isinstance(sample, (int, float, np.integer, np.floating)):
        raise OptionTypeError(
            f"sample must be a number of rows such as 200 (or a fraction such as 0.1), not {sample!r:.60}",
            option="sample",
        )
    if isinstance(sample, (float, np.floating)) and not float(sample).is_integer():
        if not 0 < sample <= 1:
            raise InvalidOptionError(
                f"sample={sample!r}: a fraction must be within (0, 1]; or give a number of rows", option="sample"
            )
        return max(1, round(sample * n))
    if sample < 1:
        raise InvalidOptionError(f"sample must be at least 1 row, not {sample!r}", option="sample")
    return min(int(sample), n)


def check_target(target: Any) -> float | None:
    if target is None:
        return None
    if isinstance(target, (bool, np.bool_)) or not isinstance(target, (int, float, np.integer, np.floating)):
        raise OptionTypeError(
            f"target must be the quality you need as a fraction such as 0.8, not {target!r:.60}", option="target"
        )
    if not 0 < target <= 1:
        raise InvalidOptionError(
            f"target must be a fraction within (0, 1] such as 0.8 (80% accuracy), not {target!r}", option="target"
        )
    return float(target)
