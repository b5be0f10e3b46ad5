"""`batchkit demo`, run as a new user would: what it prints, what it leaves behind, where its data lives."""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path

import pytest

import batchkit
from batchkit.cli import demo_data_path, display_width, load_reviews, main

ROOT = Path(__file__).resolve().parent.parent
NSMC_SHA256 = "1ef9084ac2d864220112c170648725cd0a335ff9b3952b8271ce71281e66d9c5"  # data/README.md


def test_the_demo_data_ships_inside_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wheel carries only the package: the demo must find its reviews there, wherever it runs."""
    package = Path(batchkit.__file__).resolve().parent
    path = demo_data_path().resolve()
    assert path.is_relative_to(package) and path.is_file()
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == NSMC_SHA256
    assert data == (ROOT / "data" / "nsmc_sample.tsv").read_bytes()  # the two copies cannot drift
    assert (package / "data" / "README.md").is_file()  # provenance travels with it
    section = re.search(
        r"^\[tool\.setuptools\.package-data\]\s*^batchkit\s*=\s*\[([^\]]*)\]",
        (ROOT / "pyproject.toml").read_text(),
        re.M,
    )
    assert section, "pyproject.toml has no [tool.setuptools.package-data] batchkit = [...]"
    globs = re.findall(r'"([^"]+)"', section.group(1))
    relative = path.relative_to(package)
    assert any(relative.match(glob) for glob in globs), f"{relative} is not in package-data {globs}"
    monkeypatch.chdir(tmp_path)  # no data/ folder here
    reviews = load_reviews(5)
    assert list(reviews.columns) == ["id", "document", "label"] and len(reviews) == 5


def test_the_demo_reads_well_says_it_is_simulated_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    data_home = tmp_path / "data-home"  # where batchkit keeps its files by default, as for a new user
    monkeypatch.delenv("BATCHKIT_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    assert main(["demo"]) == 0
    printed = capsys.readouterr()
    out = printed.out

    assert "SIMULATED" in out and "not Claude" in out and "ANTHROPIC_API_KEY" in out
    assert "{'input_tokens'" not in out and re.search(r"Usage: [\d,]+ input and [\d,]+ output tokens", out)
    assert out.count("counted by the API") + out.count("offline estimate") == 1  # the token source, once
    assert "batchkit job " not in out + printed.err  # the re-run is one line, not a second job summary
    assert re.search(r"Re-run of the same call.*\n.*0 new batches, 0 API calls", out)

    agree = re.search(r"agrees with the labels on (\d+) of 300 reviews", out)
    assert agree and int(agree.group(1)) >= 210, "the demo's answers must mostly agree with the labels"

    table = out.split("(first 10):\n")[1].split("\nThe simulator's")[0].splitlines()
    assert len(table) == 11
    header_at = display_width(table[0][: table[0].index("label")])
    for line in table[1:]:
        _review, label, answer = line.rsplit(None, 2)
        assert label in ("negative", "positive") and answer in ("negative", "positive")
        assert display_width(line[: line.rindex(label + "  ")]) == header_at, line  # Korean text lines up

    assert not list(tmp_path.glob("batchkit-demo-*")), "the demo's temporary store was left behind"
    assert not data_home.exists() or not any(data_home.rglob("*")), "the demo left files where batchkit keeps its own"
    assert "removed" in out


def test_display_width_counts_wide_characters_twice() -> None:
    assert display_width("abc") == 3
    assert display_width("재밌군") == 6
    assert display_width("재밌군 ok!") == 10
