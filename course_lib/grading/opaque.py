"""Submissions worth a person's look: opaque embedded data, code or data loaded at run time.

A submission built without implementing anything can answer the checks from a table: the
shipped reference outputs, or outputs recorded on the public inputs, packed into the source as
a blob (base64, pickle, marshal, zlib, ...) and unpacked at import, or loaded with ``pickle``,
``marshal`` or ``exec``. Fresh inputs in instructor grading make such a table worthless; this
scan also names it, for the instructor's review. It reads the source (``ast``; nothing runs)
and reports:

- opaque data: string or bytes literals of ``MIN_PIECE`` characters or more that are not text
  (bytes; strings whose whitespace-separated runs average ``TOKEN_CHARS`` characters or more,
  such as base64 or hex; strings with 5 % or more unprintable characters), ``BLOB_CHARS``
  characters or more in all, named with the decoders the module calls (``base64.b64decode``,
  ``zlib.decompress``, ``codecs.decode``, ``json.loads``, ...); or more than ``NUMBER_LIMIT``
  numeric literals (a table written out as numbers);
- run-time loading of code or data: importing ``pickle``, ``marshal``, ``importlib`` and their
  like, the builtins ``exec``, ``eval``, ``compile``, ``__import__`` (unless the module defines
  or imports a name of its own so called, e.g. ``from re import compile``), ``__builtins__``,
  such a module or builtin named in a string (``__import__("pickle")``,
  ``getattr(builtins, "exec")``), and ``allow_pickle=True``.

It is a heuristic that a determined author can evade; it never changes points: the grader
records a flag of kind :data:`KIND` with the reasons. The course's reference solutions and
exercise stubs raise none (the tests check).
"""

from __future__ import annotations

import ast

KIND = "opaque"
BLOB_CHARS = 4096  # opaque literal characters (in all) that make a blob: "more than a few kB"
NUMBER_LIMIT = 2000  # numeric literals that make a table
MIN_PIECE = 64  # shorter literals never count towards a blob (keys, formats, small constants)
TOKEN_CHARS = 24  # mean length of whitespace-separated runs above which a string is not text
LOADER_MODULES = frozenset({"pickle", "_pickle", "cPickle", "marshal", "dill", "cloudpickle",
                            "shelve", "joblib", "importlib", "runpy", "zipimport", "codeop",
                            "builtins"})
LOADER_BUILTINS = frozenset({"exec", "eval", "compile", "__import__"})
DECODERS = frozenset({"b64decode", "b32decode", "b16decode", "b85decode", "a85decode",
                      "urlsafe_b64decode", "standard_b64decode", "decodebytes", "decompress",
                      "a2b_base64", "a2b_hex", "unhexlify", "fromhex", "frombuffer", "loads"})
SHOWN = 3  # findings named per reason, then "and N more"


def findings(source: str) -> list[str]:
    """Reasons to review ``source`` (empty when there is none, or when it does not parse: a
    syntax error is reported by grading itself)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    scan = _Scan()
    try:
        scan.visit(tree)
    except RecursionError:
        return ["nested too deeply to be read (review by hand)"]
    return scan.reasons()


def _is_opaque(value: str | bytes) -> bool:
    """Whether a literal looks like encoded data rather than text."""
    if isinstance(value, bytes):
        return True
    runs = value.split()
    if not runs:
        return False
    text = "".join(runs)
    if len(text) / len(runs) >= TOKEN_CHARS:
        return True
    if text.isprintable():
        return False
    return sum(1 for char in text if not char.isprintable()) >= 0.05 * len(value)


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a name or an attribute chain, else ""."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _listed(items: list[str]) -> str:
    unique = list(dict.fromkeys(items))
    more = len(unique) - SHOWN
    return ", ".join(unique[:SHOWN]) + (f" and {more} more" if more > 0 else "")


class _Scan(ast.NodeVisitor):
    def __init__(self) -> None:
        self.blob_chars = 0
        self.blob_line = 0
        self.largest = 0
        self.numbers = 0
        self.decoders: list[str] = []
        self.loaders: list[str] = []
        self.builtin_uses: list[tuple[str, int]] = []
        self.own_names: set[str] = set()

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            return
        if isinstance(value, int | float | complex):
            self.numbers += 1
        elif isinstance(value, str | bytes):
            if isinstance(value, str) and value in LOADER_MODULES | LOADER_BUILTINS:
                self.loaders.append(f'"{value}" in a string (line {node.lineno})')
            if len(value) >= MIN_PIECE and _is_opaque(value):
                self.blob_chars += len(value)
                if len(value) > self.largest:
                    self.largest, self.blob_line = len(value), node.lineno

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] in LOADER_MODULES:
                self.loaders.append(f"import {alias.name} (line {node.lineno})")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level == 0 and module.split(".")[0] in LOADER_MODULES:
            self.loaders.append(f"from {module} import ... (line {node.lineno})")
        for alias in node.names:
            self.own_names.add(alias.asname or alias.name)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.own_names.add(node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.own_names.add(node.name)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "__builtins__":
            self.loaders.append(f"__builtins__ (line {node.lineno})")
        elif node.id in LOADER_BUILTINS and isinstance(node.ctx, ast.Load):
            self.builtin_uses.append((node.id, node.lineno))

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        if last in DECODERS or name in ("codecs.decode", "codecs.encode"):
            self.decoders.append(name)
        for keyword in node.keywords:
            if (keyword.arg == "allow_pickle" and not (isinstance(keyword.value, ast.Constant)
                                                       and keyword.value.value is False)):
                self.loaders.append(f"allow_pickle=True (line {node.lineno})")
        self.generic_visit(node)

    def reasons(self) -> list[str]:
        found = []
        if self.blob_chars >= BLOB_CHARS:
            decoded = f", decoded with {_listed(self.decoders)}" if self.decoders else ""
            found.append(f"embeds {self.blob_chars / 1024:.1f} kB of opaque data in string or "
                         f"bytes literals (the largest at line {self.blob_line}){decoded}")
        if self.numbers > NUMBER_LIMIT:
            found.append(f"embeds a table of {self.numbers} numeric literals")
        loaders = self.loaders + [f"{name}() (line {line})" for name, line in self.builtin_uses
                                  if name not in self.own_names]
        if loaders:
            found.append(f"loads code or data at run time: {_listed(loaders)}")
        return found
