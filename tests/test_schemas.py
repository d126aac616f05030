"""Input models: what the contract says of PATCH fields, and what is not an object."""

from __future__ import annotations

from typing import Any

import pytest

from feedsvc.errors import Invalid
from feedsvc.schemas import CategoryCreate, CategoryUpdate, _no_null, parse_input


def test_patch_fields_never_admit_null_in_the_contract() -> None:
    schema = CategoryUpdate.model_json_schema()
    name = schema["properties"]["name"]
    assert "anyOf" not in name and name["type"] == "string" and "default" not in name


def test_a_patch_field_of_several_types_keeps_them_all_but_null() -> None:
    schema: dict[str, Any] = {
        "properties": {
            "when": {
                "anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}],
                "default": None,
            }
        }
    }
    _no_null(schema)
    assert schema == {"properties": {"when": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}}


@pytest.mark.parametrize("data", [[{"slug": "jijin"}], "jijin", None, 7])
def test_input_that_is_not_an_object(data: object) -> None:
    with pytest.raises(Invalid) as info:
        parse_input(CategoryCreate, data)
    assert info.value.fields == {"body": "must be an object"}
