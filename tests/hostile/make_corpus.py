"""Writes the hostile JSON corpus (run once; the files are committed so the corpus is reviewable)."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent / "json"


def cases() -> dict[str, bytes]:
    c: dict[str, bytes] = {
        "empty": b"",
        "whitespace": b"   \n\t ",
        "truncated_object": b'{"username": "a"',
        "truncated_string": b'{"username": "a',
        "trailing_garbage": b'{"username": "a", "password": "b"} xyz',
        "single_quotes": b"{'username': 'a'}",
        "nan": b'{"username": NaN, "password": "x"}',
        "infinity": b'{"username": Infinity}',
        "huge_integer": b'{"username": ' + b"9" * 5000 + b"}",
        "huge_float": b'{"username": 1e999999}',
        "negative_zero_exponent": b'{"limit": -0e-999999}',
        "deep_array": b"[" * 50_000 + b"]" * 50_000,
        "deep_object": b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
        "nul_raw": b'{"username": "ad\x00min", "password": "x"}',
        "nul_escaped": b'{"username": "ad\\u0000min", "password": "x"}',
        "lone_surrogate": b'{"username": "\\ud800", "password": "x"}',
        "invalid_utf8": b'{"username": "\xff\xfe", "password": "x"}',
        "overlong_utf8": b'{"username": "\xc0\xaf", "password": "x"}',
        "bom_prefixed": b'\xef\xbb\xbf{"username": "a", "password": "b"}',
        "utf16": '{"username": "a", "password": "b"}'.encode("utf-16"),
        "array_not_object": b'["username", "password"]',
        "string_not_object": b'"hello"',
        "number_not_object": b"42",
        "null_body": b"null",
        "wrong_types": b'{"username": 123, "password": ["x"]}',
        "bool_for_string": b'{"username": true, "password": false}',
        "object_for_string": b'{"username": {"$gt": ""}, "password": {"$ne": null}}',
        "mongo_operator_keys": b'{"$where": "sleep(1000)", "username": "a", "password": "b"}',
        "dotted_keys": b'{"a.b": 1, "username": "a", "password": "b"}',
        "duplicate_keys": b'{"username": "a", "username": "b", "password": "c"}',
        "unicode_rtl_and_zero_width": '{"username": "adm\u200bin\u202e", "password": "x"}'.encode(),
        "emoji_and_cjk": '{"username": "\U0001f600\u7f51\u70b9", "password": "\u5bc6\u7801"}'.encode(),
        "control_chars": b'{"username": "a\\u0007\\u001b[31m", "password": "x"}',
        "very_long_key": b'{"' + b"k" * 100_000 + b'": 1}',
        "many_keys": json.dumps({f"k{i}": i for i in range(20_000)}).encode(),
        "long_string_1mb": json.dumps({"username": "u" * 1_000_000, "password": "x"}).encode(),
    }
    return c


def main() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    for name, body in cases().items():
        (HERE / f"{name}.json").write_bytes(body)
    print(f"{len(cases())} files in {HERE}")


if __name__ == "__main__":
    main()
