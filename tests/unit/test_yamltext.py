"""``gongkai.yamltext.safe_load`` parses with libyaml where PyYAML has it, and must read every
document exactly as ``yaml.safe_load`` does: the rule sets freshness reads at each build, the
repo's other YAML, and the errors an operator sees for a broken file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gongkai import yamltext

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted(
    p for d in ("shared/src/gongkai/rules/data", "docs/asyncapi") for p in (ROOT / d).glob("*.yaml")
)


def test_the_c_parser_is_there() -> None:
    """Without libyaml the helper still works, only slower: the lock's PyYAML wheel has it, and
    a build without it should be noticed, not silently take 8x the time."""
    assert yaml.__with_libyaml__


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_a_document_reads_as_safe_load_reads_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert yamltext.safe_load(text) == yaml.safe_load(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [2, 3\n",
        "id: [",
        "key: value\n  bad indent: 1\n",
        "- a\n- b: c: d\n",
        "text: \"unterminated\n",
        "\t- tab\n",
        "a: !!python/object:os.system ls\n",
    ],
)
def test_a_broken_document_fails_as_safe_load_fails(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as expected:
        yaml.safe_load(text)
    with pytest.raises(yaml.YAMLError) as got:
        yamltext.safe_load(text)
    assert type(got.value) is type(expected.value)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize(
    "text",
    ["", "2026-03-01", "on: yes\noff: no\n", "x: 1e3\ny: 0o17\nz: 012\n", "a: &r [1]\nb: *r\n",
     "n: ~\nt: 2026-12-03T08:00:00+08:00\n", "中文: 政府信息公开\n", "{\"json\": [1, 2.5, null]}"],
)
def test_scalars_resolve_as_safe_load_resolves_them(text: str) -> None:
    assert yamltext.safe_load(text) == yaml.safe_load(text)
