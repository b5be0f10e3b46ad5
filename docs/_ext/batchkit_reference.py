"""The generated parts of the reference: options, errors and the command line, each from its one source.

- options: the fields of :class:`batchkit.core.params.RequestParams`, :class:`~batchkit.core.options.RunOptions`
  and :class:`~batchkit.core.options.EstimateOptions` (each declared once with ``option``), their defaults,
  and the docstring written under each field;
- errors: every exception class in ``batchkit/errors.py``, its bases and its docstring;
- the command line: ``batchkit.cli._parser()``, each command's help and arguments.

The functions return Markdown (MyST), so the tests can check them without Sphinx
(``tests/test_docs.py``); the directives ``batchkit-options``, ``batchkit-errors`` and
``batchkit-cli`` put them into the pages when Sphinx builds them.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import re
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):`~?([^`]+)`")


def _plain(text: str) -> str:
    """Docstring text for a Markdown table cell: roles as code, one line, pipes escaped."""
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    text = text.replace("``", "`")
    return " ".join(text.split()).replace("|", "\\|")


def attribute_docs(path: Path, cls: str | None) -> dict[str, str]:
    """The docstring written under each field of class ``cls`` (None: under each module-level
    name) in the module at ``path``."""
    tree = ast.parse(path.read_text())
    bodies = (
        [tree.body] if cls is None else [n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
    )
    docs: dict[str, str] = {}
    for body in bodies:
        for field, after in itertools.pairwise(body):
            target = (
                field.target
                if isinstance(field, ast.AnnAssign)
                else (field.targets[0] if isinstance(field, ast.Assign) and len(field.targets) == 1 else None)
            )
            if (
                isinstance(target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[target.id] = inspect.cleandoc(after.value.value)
    return docs


CONSTANTS = (
    ("batchkit", "DEFAULT_MODEL", "batchkit.core.params"),
    ("batchkit", "DEFAULT_MAX_TOKENS", "batchkit.core.params"),
    ("batchkit.simulator", "SIMULATED_MODELS", "batchkit.simulator._responder"),
)
"""Public constants: where users import them, their name, and the module whose source documents them."""


def constants_markdown() -> str:
    """Each public constant with its value and the docstring under its definition (autodoc would
    show the docstring of its type: a constant re-exported by a package has none of its own)."""
    import importlib

    out = ["```{eval-rst}"]
    for public, name, source in CONSTANTS:
        module = importlib.import_module(source)
        doc = attribute_docs(Path(module.__file__ or ""), None).get(name, "")
        out.append(f".. py:data:: {public}.{name}\n   :value: {getattr(module, name)!r}\n")
        out.append(textwrap.indent(doc, "   ") + "\n")
    out.append("```\n")
    return "\n".join(out)


OPTION_GROUPS = (
    ("RequestParams", "what to send"),
    ("RunOptions", "how to run"),
    ("EstimateOptions", "`estimate` only"),
)


def options() -> list[dict[str, Any]]:
    """Every call option: name, group, default and documentation, from their declarations
    (``batchkit/core/params.py`` and ``batchkit/core/options.py``)."""
    from batchkit.core import options as module

    rows = []
    for cls_name, group in OPTION_GROUPS:
        cls = getattr(module, cls_name)
        docs = attribute_docs(Path(inspect.getsourcefile(cls) or ""), cls_name)
        for f in dataclasses.fields(cls):
            if "check" not in f.metadata and f.name != "extra":
                continue
            if f.default is not dataclasses.MISSING:
                default = "none" if f.default is None else f"`{f.default!r}`"
            else:
                default = ""
            name = "**params" if f.name == "extra" else f.name
            rows.append({"name": name, "group": group, "default": default, "doc": docs.get(f.name, "")})
    return rows


def options_markdown() -> str:
    lines = ["| option | default | meaning |", "|---|---|---|"]
    group = None
    for row in options():
        if row["group"] != group:
            group = row["group"]
            lines.append(f"| *{group}* | | |")
        lines.append(f"| `{row['name']}` | {row['default']} | {_plain(row['doc'])} |")
    return "\n".join(lines) + "\n"


def errors() -> list[type]:
    """Every exception and warning class defined in ``batchkit/errors.py``, in source order."""
    from batchkit import errors as module

    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__ == module.__name__
    ]
    lines = {cls: inspect.getsourcelines(cls)[1] for cls in classes}
    return sorted(classes, key=lines.__getitem__)


def errors_markdown() -> str:
    out = ["```{eval-rst}"]  # autodoc writes reStructuredText
    for cls in errors():
        out.append(f".. autoexception:: batchkit.{cls.__name__}\n   :show-inheritance:\n")
    out.append("```\n")
    return "\n".join(out)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help or "" for c in action._choices_actions}
    return {name: (helps.get(name, ""), sub) for name, sub in action.choices.items()}


def cli() -> dict[str, dict[str, Any]]:
    """Each command of ``batchkit``: its help and its arguments (name → help), from the parser."""
    from batchkit.cli import _parser
    from batchkit.simulator.__main__ import build_parser as simulator_parser

    commands = {}
    for name, (text, sub) in _subcommands(_parser()).items():
        if name == "sim":  # its arguments are the simulator's own command line
            sub = simulator_parser(prog="batchkit sim")
        arguments = {}
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            label = ", ".join(action.option_strings) or action.dest.upper()
            arguments[label] = action.help or ""
        commands[name] = {"help": text, "arguments": arguments}
    return commands


def cli_markdown() -> str:
    out = []
    for name, command in cli().items():
        out.append(f"`batchkit {name}`\n: {_plain(command['help'])}\n")
        for label, text in command["arguments"].items():
            out.append(f"  - `{label}`: {_plain(text) if text != argparse.SUPPRESS else ''}")
        out.append("")
    return "\n".join(out)


GENERATORS = {
    "batchkit-options": options_markdown,
    "batchkit-errors": errors_markdown,
    "batchkit-cli": cli_markdown,
    "batchkit-constants": constants_markdown,
}


def setup(app: Any) -> dict[str, Any]:
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    def directive(generate: Any) -> type:
        class Generated(SphinxDirective):
            def run(self) -> list[Any]:
                container = nodes.container()
                text = textwrap.dedent(generate())
                self.state.nested_parse(StringList(text.splitlines(), source="generated"), 0, container)
                children: list[Any] = container.children
                return children

        return Generated

    for name, generate in GENERATORS.items():
        app.add_directive(name, directive(generate))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
