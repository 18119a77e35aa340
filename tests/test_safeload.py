"""jetscale.safeload: JSON and YAML a user or a client wrote, read within limits; every refusal is a
``ConfigError`` that names the source (and the line for YAML), never a traceback."""

from __future__ import annotations

import pytest

from jetscale.errors import ConfigError
from jetscale.safeload import (
    JSON_MAX_DEPTH,
    MAX_NUMBER_LENGTH,
    YAML_MAX_DEPTH,
    LimitError,
    ParseError,
    load_json,
    load_yaml,
    load_yaml_all,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param('{"a": [1, 2.5, "x"], "b": null}', {"a": [1, 2.5, "x"], "b": None}, id="object"),
        pytest.param('"[[[[{{{{"', "[[[[{{{{", id="brackets-in-a-string-are-not-depth"),
        pytest.param('"quote \\" then [[["', 'quote " then [[[', id="escaped-quote"),
        pytest.param("[" * JSON_MAX_DEPTH + "]" * JSON_MAX_DEPTH, None, id="at-the-depth-limit"),
        pytest.param("1" * MAX_NUMBER_LENGTH, int("1" * MAX_NUMBER_LENGTH), id="longest-number"),
    ],
)
def test_json_within_the_limits_reads_as_json_loads_would(text: str, value: object) -> None:
    got = load_json(text, what="body")
    if value is not None:
        assert got == value
    assert load_json(text.encode("utf-8"), what="body") == got


@pytest.mark.parametrize(
    ("text", "error", "fragment"),
    [
        pytest.param(
            "[" * 100_000 + "]" * 100_000, LimitError, f"nested at most {JSON_MAX_DEPTH} levels deep", id="nested-100k"
        ),
        pytest.param('{"a":' * 65 + "1" + "}" * 65, LimitError, "(got 65 levels)", id="one-level-too-deep"),
        pytest.param("[" + "9" * 5000 + "]", LimitError, "(5000 characters)", id="5000-digit-integer"),
        pytest.param("1e999", LimitError, "numbers a float can hold", id="overflowing-float"),
        pytest.param("[NaN]", ParseError, "NaN is not a JSON number", id="nan"),
        pytest.param("-Infinity", ParseError, "-Infinity is not a JSON number", id="infinity"),
        pytest.param("{not json", ParseError, "invalid JSON", id="not-json"),
        pytest.param(b"\xff\xfe\x00", ParseError, "invalid JSON", id="undecodable-bytes"),
    ],
)
def test_json_past_a_limit_is_one_clear_error(text: str | bytes, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as caught:
        load_json(text, what="trace.jsonl:3")
    message = str(caught.value)
    assert isinstance(caught.value, ConfigError)
    assert message.startswith("trace.jsonl:3: ") and fragment in message
    assert "\n" not in message and len(message) < 300


def test_a_load_error_carries_constraint_and_value_for_a_server_to_answer_with() -> None:
    with pytest.raises(LimitError) as caught:
        load_json("[" * 70 + "]" * 70, what="body")
    assert caught.value.constraint == f"nested at most {JSON_MAX_DEPTH} levels deep"
    assert caught.value.value == "70 levels"


def test_yaml_reads_as_safe_load_would() -> None:
    text = "a: [1, 2]\nb: {c: x}\nd: &anchor {e: 1}\nf: *anchor\n"
    assert load_yaml(text, what="f.yaml") == {"a": [1, 2], "b": {"c": "x"}, "d": {"e": 1}, "f": {"e": 1}}
    assert load_yaml_all("a: 1\n---\n---\nb: 2\n", what="f.yaml") == [{"a": 1}, None, {"b": 2}]
    assert load_yaml("", what="f.yaml") is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param(
            "a: " + "[" * 5000 + "]" * 5000, f"nested at most {YAML_MAX_DEPTH} levels deep", id="flow-nested-5000"
        ),
        pytest.param(
            "".join(f"{'  ' * i}k:\n" for i in range(150)),
            f"nested at most {YAML_MAX_DEPTH} levels",
            id="block-nested-150",
        ),
        pytest.param("n: " + "7" * 500, f"numbers of at most {MAX_NUMBER_LENGTH} characters", id="500-digit-int"),
        pytest.param(
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(7)
            ),
            "nodes with its aliases expanded",
            id="billion-laughs",
        ),
        pytest.param("a: [1, 2\n", "invalid YAML", id="unclosed-flow"),
        pytest.param("when: 2001-13-01\n", "invalid YAML", id="impossible-date"),
    ],
)
def test_yaml_past_a_limit_is_one_clear_error_with_its_line(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml(text, what="hpa.yaml")
    message = str(caught.value)
    assert message.startswith("hpa.yaml: ") and fragment in message
    assert "line " in message
    assert "\n" not in message and len(message) < 300


def test_an_alias_that_would_go_too_deep_is_refused() -> None:
    deep = "[" * 60 + "]" * 60
    text = f"a: &deep {deep}\nb: " + "[" * 50 + "*deep" + "]" * 50 + "\n"
    with pytest.raises(LimitError, match=r"with alias \*deep expanded"):
        load_yaml(text, what="f.yaml")
