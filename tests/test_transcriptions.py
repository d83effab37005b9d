"""Builders that transcribe a source's code are checked against that code, not trusted.

The Fashion-MNIST post's 'with ReLU' networks are judged as linear because its
``dense_activation()`` returns nothing from its activation branches. The builder keeps that
as a transcription (``models.fashion_dense.dense_activation_as_coded``); this test reads the
function from the source text and works out, branch by branch with ``ast``, what it returns.
"""

from __future__ import annotations

import ast

import pytest

from claims import sources
from models.fashion_dense import ACTIVATION_CHOICES, dense_activation_as_coded

pytestmark = pytest.mark.unit
TITLE = "Fine-Tuning Shallow Networks with Keras for Efficient Image Classification"


def _function(text: str, name: str) -> ast.FunctionDef:
    """The ``def name():`` block of a source's code: its line and the indented lines after it."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {name}("))
    later = range(start + 1, len(lines))
    end = next((i for i in later if lines[i] and not lines[i][0].isspace()), len(lines))
    (node,) = ast.parse("\n".join(lines[start:end])).body
    assert isinstance(node, ast.FunctionDef)
    return node


def returns(function: ast.FunctionDef, choice: str) -> str | None:
    """What the function returns when its ``== choice`` branch runs: the name of the call it
    returns, or None (a bare ``return None``, or falling off the end)."""
    branch: ast.If | None = function.body[0] if isinstance(function.body[0], ast.If) else None
    while branch is not None:
        test = branch.test
        if isinstance(test, ast.Compare) and isinstance(test.comparators[0], ast.Constant) \
                and test.comparators[0].value == choice:
            for node in ast.walk(ast.Module(body=branch.body, type_ignores=[])):
                if isinstance(node, ast.Return) and node.value is not None \
                        and not (isinstance(node.value, ast.Constant) and node.value.value is None):
                    return ast.unparse(node.value)
            return None
        branch = branch.orelse[0] if branch.orelse and isinstance(branch.orelse[0], ast.If) else None
    raise AssertionError(f"no branch for {choice!r}")


def test_the_fashion_builders_activation_is_what_the_posts_code_returns() -> None:
    if not sources.available():
        pytest.skip(f"the source documents are not at {sources.directory()}: set LEAN_CNN_SOURCES")
    function = _function(sources.files()[TITLE].read_text(encoding="utf-8"), "dense_activation")
    for choice in ACTIVATION_CHOICES:
        assert returns(function, choice) == dense_activation_as_coded(choice), choice


def test_the_branch_reader_sees_a_return() -> None:
    code = ("def dense_activation():\n    if F == 'relu':\n        return keras.layers.ReLU()\n"
            "    elif F == 'elu':\n        keras.layers.ELU()\n"
            "    elif F == 'default':\n        return None\n")
    function = _function(code, "dense_activation")
    assert returns(function, "relu") == "keras.layers.ReLU()"
    assert returns(function, "elu") is None and returns(function, "default") is None
