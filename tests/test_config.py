"""Tests for mstoolkit.config: the one path from plain data to a config dataclass, and UserError."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from mstoolkit.config import UserError, coerce, field_comments, from_dict, plain, split_overrides
from mstoolkit.data import StyleBenchConfig
from mstoolkit.model import ModelConfig
from mstoolkit.tokenizer import TokenizerConfig
from mstoolkit.train import TrainConfig


@dataclass
class Window:
    bars: int = 4
    styles: tuple[str, ...] | None = None
    swing: float = 2.0

    def __post_init__(self) -> None:
        if self.bars < 1:
            raise ValueError("bars must be >= 1")


def test_from_dict_parses_values_by_field_type_on_request():
    assert from_dict(Window, {"bars": 2}) == Window(bars=2)
    assert from_dict(Window, {"bars": "2", "styles": "swing, waltz", "swing": "1.5"}, parse=True) == \
        Window(2, ("swing", "waltz"), 1.5)
    assert from_dict(Window, {"styles": "none"}, parse=True).styles is None


@pytest.mark.parametrize("data, message", [
    ({"bras": 2}, "Window: unknown field 'bras'; did you mean bars?"),
    ({"tempo": 2}, "Window: unknown field 'tempo'$"),  # nothing close: no guess
    ([("bars", 2)], "Window: expected a mapping of fields, got list"),
])
def test_from_dict_names_an_unknown_key_and_the_closest_ones(data, message):
    with pytest.raises(UserError, match=message):
        from_dict(Window, data)


def test_the_config_classes_share_the_path():
    """TrainConfig (its overrides), StyleBenchConfig and TokenizerConfig refuse unknown keys the same way."""
    for make, key in ((StyleBenchConfig.from_dict, "window_bar"), (TokenizerConfig.from_dict, "max_duratoin")):
        with pytest.raises(UserError, match=rf"Config: unknown field '{key}'; did you mean {key[:5]}"):
            make({key: 1})
    with pytest.raises(UserError, match="unknown config key 'data.window_bar'; did you mean data.window_bars"):
        TrainConfig().with_overrides({"data.window_bar": 2})


def test_user_errors_are_value_errors_and_the_class_checks_pass_through():
    assert issubclass(UserError, ValueError)
    with pytest.raises(ValueError, match="bars must be >= 1") as caught:
        from_dict(Window, {"bars": 0})
    assert type(caught.value) is ValueError  # the dataclass's own error, unchanged
    with pytest.raises(UserError, match="bars: expected an integer, got 'four'"):
        from_dict(Window, {"bars": "four"}, parse=True)


def test_coerce_and_a_field_type_it_cannot_parse():
    assert coerce("k", bool, "off") is False and coerce("k", int, "1_000") == 1000 and coerce("k", int, 3.0) == 3
    assert coerce("k", tuple[int, int], "1,2") == (1, 2)
    with pytest.raises(UserError, match="k: expected 2 values"):
        coerce("k", tuple[int, int], "1,2,3")
    with pytest.raises(UserError, match="k: expected an integer or none, got 'x'"):
        coerce("k", int | None, "x")
    with pytest.raises(TypeError, match="cannot parse a value of type"):  # a parser gap is a bug, not a user error
        coerce("k", set, "x")


def test_split_overrides_routes_dotted_keys():
    top, sections = split_overrides({"lr": 1, "data.window-bars": 2, "model.dropout": 0.1}, ["lr"],
                                    {"data": ["window_bars"], "model": ["dropout"]})
    assert top == {"lr": 1} and sections == {"data": {"window_bars": 2}, "model": {"dropout": 0.1}}
    with pytest.raises(UserError, match="unknown config key 'model.window_bars'; did you mean data.window_bars"):
        split_overrides({"model.window_bars": 2}, ["lr"], {"data": ["window_bars"], "model": ["dropout"]})


def test_plain_turns_tuples_into_lists():
    assert plain({"a": (1, (2, 3)), "b": [("x",)]}) == {"a": [1, [2, 3]], "b": [["x"]]}


@dataclass
class _Commented:
    rate: float = 0.1  # how fast it goes. More detail that --help leaves out
    # Two fields share this block: the first sentence
    # runs over two lines. A second sentence stays out.
    first: int = 0
    second: int = 0
    third: int = 0  # its own comment
    #                 continued on an indented line
    fourth: int = 0

    bare: int = 0
    after_blank: str = "x # not a comment"


def test_field_comments_take_each_fields_first_sentence_from_the_source():
    comments = field_comments(_Commented)
    assert comments["rate"] == "how fast it goes."
    assert comments["first"] == comments["second"] == "Two fields share this block: the first sentence runs over two lines."
    assert comments["third"] == "its own comment continued on an indented line"
    # a field with an inline comment ends the shared block; so does a blank line
    assert comments["fourth"] == comments["bare"] == comments["after_blank"] == ""
    # every config key `mstoolkit train --help` lists has its comment to show
    classes = {"": TrainConfig, "data": StyleBenchConfig, "model": ModelConfig}
    missing = [key for key in TrainConfig.keys() if not field_comments(classes[key.rpartition(".")[0]])[key.rpartition(".")[2]]]
    assert not missing, missing
