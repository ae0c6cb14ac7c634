"""syncer.strvals: --set, --set-string and --set-file as Helm reads them.

The expectations are Helm's (its strvals parser and what `helm template --set`
renders); ``test_matches_helm`` renders the same arguments with the helm binary
this project builds and compares.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from syncer import strvals
from syncer.local import binaries
from syncer.strvals import StrvalsError, apply, as_string, file_content

CASES: list[tuple[str, dict[str, Any]]] = [
    ("name=value", {"name": "value"}),
    ("a=1,b=2", {"a": 1, "b": 2}),
    ("a.b.c=d", {"a": {"b": {"c": "d"}}}),
    (r"a\.b=c", {"a.b": "c"}),
    (r"name=one\,two,three=four", {"name": "one,two", "three": "four"}),
    (r"name=one\=two", {"name": "one=two"}),
    ("a=x=y", {"a": "x=y"}),
    ("a=", {"a": ""}),
    ("a=,b=1", {"a": "", "b": 1}),
    ("a=1,", {"a": 1}),
    ("t=true,f=FALSE,n=Null", {"t": True, "f": False, "n": None}),
    ("zero=0,lead=007,neg=-5,plus=+5", {"zero": 0, "lead": "007", "neg": -5, "plus": 5}),
    ("f=1.5,e=1e3,u=1_000,big=9223372036854775808",
     {"f": "1.5", "e": "1e3", "u": "1_000", "big": "9223372036854775808"}),
    ("l={a,b,3}", {"l": ["a", "b", 3]}),
    ("l={a,b},x=1", {"l": ["a", "b"], "x": 1}),
    ("l={}", {"l": [""]}),
    ("l[0]=a", {"l": ["a"]}),
    ("l[2]=c", {"l": [None, None, "c"]}),
    ("l[0]=a,l[1]=b", {"l": ["a", "b"]}),
    ("l[0].name=n,l[0].port=80", {"l": [{"name": "n", "port": 80}]}),
    ("l[1][0]=x", {"l": [None, ["x"]]}),
    ("l[0]={a,b}", {"l": [["a", "b"]]}),
    ("=1", {}),
    ("l[0]", {"l": []}),
    ("l[0].", {"l": []}),
    ("l[0][0]", {"l": []}),
    ("a.b.", {}),
    ("x=1,l[0]", {"x": 1, "l": []}),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_set(text: str, expected: dict[str, Any]) -> None:
    assert apply({}, text) == expected


def test_set_string_keeps_text() -> None:
    assert apply({}, "a=true,b=1,c={0,x}", as_string) == {"a": "true", "b": "1",
                                                          "c": ["0", "x"]}


def test_set_file_reads_the_named_file(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("-----BEGIN-----\n")
    assert apply({}, f"tls.ca={tmp_path / 'ca.crt'}", file_content) == {
        "tls": {"ca": "-----BEGIN-----\n"}}
    with pytest.raises(StrvalsError, match="cannot read"):
        apply({}, f"a={tmp_path / 'missing'}", file_content)


def test_merges_into_existing_values_without_changing_them() -> None:
    original = {"a": {"b": 1}, "l": [1, 2], "s": "x"}
    assert apply(original, "a.c=2,l[1]=3,s.t=u") == {"a": {"b": 1, "c": 2}, "l": [1, 3],
                                                      "s": {"t": "u"}}
    assert original == {"a": {"b": 1}, "l": [1, 2], "s": "x"}


REFUSED = [
    ("name", "key 'name' has no value"),
    ("a.b", "key 'b' has no value"),
    ("a=1,,b=2", "key '' has no value (cannot end with ,)"),
    ("a,b=1", "key 'a' has no value (cannot end with ,)"),
    ("a..b=1", "key map 'a' has no value"),
    ("l={a,b", "list must terminate with '}'"),
    ("l[x]=1", "error parsing index"),
    ("l[-1]=1", "negative -1 index not allowed"),
    ("l[65537]=1", "greater than maximum supported index"),
    ("l[0]x=1", "unexpected data at end of array index"),
    (".".join("k" * 32) + "=1", "nested level"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_refused_like_helm(text: str, message: str) -> None:
    with pytest.raises(StrvalsError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        apply({}, text)


HELM_CHECKED = [text for text, _ in CASES]


def test_matches_helm(tmp_path: Path) -> None:
    """The helm binary reads each case the same way (a one-template chart prints
    ``.Values`` as JSON) and refuses what is refused here (helm is built by
    ``make binaries``)."""
    chart = tmp_path / "c"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "templates" / "v.yaml").write_text("{{ toJson .Values }}\n")
    helm = str(binaries.bin_dir() / f"helm-{binaries.HELM_VERSION}")
    for text in HELM_CHECKED:
        out = subprocess.run([helm, "template", str(chart), "--set", text],
                             capture_output=True, text=True, check=True).stdout
        rendered = json.loads(out.split("\n", 2)[2])
        ours = strvals.apply({}, text)
        assert rendered == ours, text
    for text, _ in REFUSED:
        refused = subprocess.run([helm, "template", str(chart), "--set", text],
                                 capture_output=True, text=True, check=False)
        assert refused.returncode != 0, f"helm accepted {text!r}"

