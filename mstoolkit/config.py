"""Config dataclasses from plain data, and the error a user's mistake raises.

One path from a mapping (JSON, YAML, command-line strings) to a config dataclass, shared by
:class:`~mstoolkit.train.TrainConfig`, :class:`~mstoolkit.data.StyleBenchConfig` and
:class:`~mstoolkit.tokenizer.TokenizerConfig`: :func:`from_dict` refuses an unknown key by name (with the
closest known ones) and can parse each value by its field's type (:func:`coerce`), so ``"3e-4"``,
``"true"`` and ``"swing,waltz"`` from a command line become ``0.0003``, ``True`` and ``("swing",
"waltz")``. Standard library only, so that any module (``model.py`` too) can use it without cost.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Window:
    ...     bars: int = 4
    ...     styles: tuple[str, ...] = ("swing",)
    >>> from_dict(Window, {"bars": "2", "styles": "swing,waltz"}, parse=True)
    Window(bars=2, styles=('swing', 'waltz'))
    >>> from_dict(Window, {"bras": 2})
    Traceback (most recent call last):
    ...
    mstoolkit.config.UserError: Window: unknown field 'bras'; did you mean bars?

:class:`UserError` is what the library raises when what a user gave (a config key or value, a file, an
argument) is wrong: the ``mstoolkit`` command prints it as one line, where any other exception keeps
its traceback (a bug should be seen as one). It is a ValueError, so ``except ValueError`` still
catches it.
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import inspect
import io
import re
import textwrap
import tokenize
import types
import typing
from typing import Any, Mapping, Sequence, TypeVar, Union

T = TypeVar("T")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


# The default temperature of a transfer (generate.transfer, the CLI, bench, the studio, the trainer's
# eval transfers): 0, greedy. A StyleBench target is one deterministic rendering, so every sampled step
# away from the most likely token can only cost notes: the demo model on the first 100 validation
# triplets (content re-rendered straight, as transfer does) scores note F1 0.581 at T 0.9, 0.642 at T 0.5
# and 0.672 greedy. Sampling (T > 0) stays an option for variety.
TRANSFER_TEMPERATURE = 0.0

# The rate every reference is rendered or resampled at before its mel (audio.SAMPLE_RATE, which a test
# checks against this; audio.py keeps its own line because StyleBench's mel caches are keyed by that file's
# bytes), and seconds per mel frame (hop 512 samples): what the recogniser and the reference augmentations
# need to turn seconds into frames and bands into hertz without importing the audio stack.
SAMPLE_RATE = 22050
MEL_HOP_SECONDS = 512 / SAMPLE_RATE

# The model's musical time (mstoolkit.model.musical_time): every bar counted as 4/4 at 12 ticks per
# quarter, so content and target times agree whatever the meter; the harmony lock reads the same clock.
MUSICAL_BAR_TICKS = 48


class UserError(ValueError):
    """A mistake in what the user gave (a config key or value, a file, an argument), explained in its
    message; the CLI prints it as one line instead of a traceback."""


def field_types(cls: type) -> dict[str, Any]:
    """``{field name: type}`` of a dataclass, its string annotations resolved."""
    return typing.get_type_hints(cls)


@functools.lru_cache(maxsize=None)  # one read of the source per class
def field_comments(cls: type) -> dict[str, str]:
    """The first sentence of the comment that explains each field of a dataclass in its source (``""``
    where there is none): the help text of the field's command-line flag, so it is written once.

    A field's comment is the one after it on its line (with any indented ``#`` lines that continue it), or
    else the block of ``#`` lines just above it, which also covers the fields right below that have none
    of their own (``reference_timbres`` and ``reference_room`` share one block).

        >>> from mstoolkit.data import StyleBenchConfig
        >>> field_comments(StyleBenchConfig)["min_notes"]
        'windows with fewer notes are skipped'
    """
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source to read (e.g. an install of byte code only): no help, no failure
        return {f.name: "" for f in dataclasses.fields(cls)}
    body = ast.parse(source).body[0].body
    fields = {s.lineno: s.target.id for s in body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
    inline: dict[int, str] = {}  # line -> a comment after code on that line
    alone: dict[int, str] = {}  # line -> a comment on a line of its own
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            (inline if tok.line[:tok.start[1]].strip() else alone)[tok.start[0]] = tok.string[1:]
    for line in sorted(inline):  # indented "#" lines right below continue a comment after code
        follow = line + 1
        while alone.get(follow, "").startswith("  "):
            inline[line] += " " + alone.pop(follow)
            follow += 1
    comments: dict[str, str] = {}
    shared = ""  # a block above fields that have no comment of their own
    for line in sorted(fields):
        block, above = [], line - 1
        while above in alone:
            block.insert(0, alone[above])
            above -= 1
        if block or above not in fields:  # a new block, or a blank line / other code: the old one ends
            shared = " ".join(block)
        text = " ".join(inline.get(line, shared).split())
        if line in inline:
            shared = ""
        comments[fields[line]] = re.split(r"(?<=\.)\s+(?=[A-Z])", text)[0]
    return comments


def unknown_key(key: str, valid: Sequence[str], what: str = "unknown config key",
                otherwise: str = "; see `mstoolkit train --help` for the keys") -> str:
    """``"unknown config key 'lrr'; did you mean lr?"``: the message for a key not in ``valid``.

        >>> unknown_key("lrr", ["lr", "min_lr", "seed"])
        "unknown config key 'lrr'; did you mean lr?"
    """
    close = difflib.get_close_matches(key, valid, n=3)
    return f"{what} {key!r}" + (f"; did you mean {', '.join(close)}?" if close else otherwise)


def from_dict(cls: type[T], data: Any, *, parse: bool = False, label: str | None = None) -> T:
    """``cls(**data)`` for a config dataclass ``cls``; :class:`UserError` naming an unknown key (and
    the closest known ones) or, with ``parse``, a value that does not parse as its field's type
    (:func:`coerce`). Errors of ``cls`` itself (its ``__post_init__`` checks) pass unchanged.

    ``label`` names the config in messages (default: the class name).
    """
    label = label or cls.__name__
    if not isinstance(data, Mapping):
        raise UserError(f"{label}: expected a mapping of fields, got {type(data).__name__}")
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in data:
        if key not in names:
            raise UserError(unknown_key(str(key), names, what=f"{label}: unknown field", otherwise=""))
    if parse:
        hints = field_types(cls)
        data = {key: coerce(f"{label}.{key}", hints[key], value) for key, value in data.items()}
    return cls(**data)


def split_overrides(overrides: Mapping[str, Any], top: Sequence[str],
                    sections: Mapping[str, Sequence[str]]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Route ``{"lr": ..., "data.window_bars": ..., "model.dropout": ...}`` to the top-level keys
    ``top`` and the dotted ``sections`` (``{"data": keys, "model": keys}``); ``-`` reads as ``_``.
    :class:`UserError` naming an unknown key and the closest known ones.

        >>> split_overrides({"lr": 1, "data.window-bars": 2}, ["lr"], {"data": ["window_bars"]})
        ({'lr': 1}, {'data': {'window_bars': 2}})
    """
    valid = list(top) + [f"{name}.{key}" for name, keys in sections.items() for key in keys]
    found: tuple[dict[str, Any], dict[str, dict[str, Any]]] = ({}, {name: {} for name in sections})
    for key, value in overrides.items():
        key = key.replace("-", "_")
        head, dot, tail = key.partition(".")
        if dot and head in sections and tail in sections[head]:
            found[1][head][tail] = value
        elif key in top:
            found[0][key] = value
        else:
            raise UserError(unknown_key(key, valid))
    return found


def coerce(key: str, tp: Any, value: Any) -> Any:
    """``value`` (possibly a command-line string) as type ``tp``; :class:`UserError` naming ``key`` otherwise.

        >>> coerce("lr", float, "3e-4"), coerce("compile", bool, "yes"), coerce("fractions", tuple[float, ...], "0.5,0.5")
        (0.0003, True, (0.5, 0.5))
        >>> coerce("lr", float, "fast")
        Traceback (most recent call last):
        ...
        mstoolkit.config.UserError: lr: expected a number, got 'fast'
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("none", "null"))):
            return None
        options = [a for a in args if a is not type(None)]
        for option in options:
            try:
                return coerce(key, option, value)
            except ValueError:
                continue
        names = " or ".join(_type_name(a) for a in args)
        raise UserError(f"{key}: expected {names}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        raise UserError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise UserError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise UserError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise UserError(f"{key}: expected a string, got {value!r}")
    if origin is tuple:
        items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise UserError(f"{key}: expected a comma-separated list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(key, args[0], v) for v in items)
        if len(items) != len(args):
            raise UserError(f"{key}: expected {len(args)} values, got {value!r}")
        return tuple(coerce(key, a, v) for a, v in zip(args, items))
    if origin is dict:
        if isinstance(value, dict):
            return dict(value)
        raise UserError(f"{key}: expected a mapping, got {value!r}")
    raise TypeError(f"{key}: cannot parse a value of type {tp}")  # a field type this parser lacks: a bug


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false",
            type(None): "none"}.get(tp, "a comma-separated list" if typing.get_origin(tp) is tuple else str(tp))


def plain(value: Any) -> Any:
    """Tuples -> lists, all the way down (JSON/YAML friendly).

        >>> plain({"fractions": (0.8, 0.1, 0.1), "styles": [("a", 1)]})
        {'fractions': [0.8, 0.1, 0.1], 'styles': [['a', 1]]}
    """
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
