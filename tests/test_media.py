"""Images and PDFs in columns: placeholders, keys by content, limits before any call, batches
cut by bytes, estimates by the API's token rules — end to end against the simulator, whose
answers come from each file's content (an image's colour, a PDF's ``name: value`` lines).

The images and PDFs are generated here (solid colours with Pillow; PDFs by
:func:`batchkit.core.media.text_pdf`): see data/README.md.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import batchkit
from batchkit import CellError, MediaError, PromptError
from batchkit.core import media
from batchkit.engine import calls
from batchkit.simulator import Processing, SimConfig, Simulator
from batchkit.stores.store import Store

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (240, 220, 40),
    "purple": (140, 50, 170),
    "orange": (250, 140, 20),
}
FORMATS = ("PNG", "JPEG", "GIF", "WEBP")


@pytest.fixture
def sim() -> Simulator:
    sim = Simulator(config=SimConfig(processing=Processing.instant()))
    batchkit.set_default_client(sim.client())
    return sim


def make_images(folder: Path, n: int) -> pd.DataFrame:
    """``n`` small distinct images of known colours in four formats; a frame of (path, colour)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(COLOURS)
    rows = []
    for i in range(n):
        colour = names[i % len(names)]
        fmt = FORMATS[(i // len(names)) % len(FORMATS)]
        image = Image.new("RGB", (20 + i % 20, 10 + i // 20), COLOURS[colour])  # each its own size
        path = folder / f"img_{i:04d}.{fmt.lower()}"
        image.save(path, format=fmt)
        rows.append((str(path), colour))
    return pd.DataFrame(rows, columns=["photo", "colour"])


def sent(sim: Simulator) -> int:
    return int(sim.stats()["batch_requests_received"])


def test_a_folder_of_images_is_classified_each_answer_its_own_image(sim: Simulator, tmp_path: Path):
    df = make_images(tmp_path / "photos", 300)
    # the same photos under other names: sent once
    for i in range(0, 40, 2):
        copy = tmp_path / "photos" / f"copy_of_{i}{Path(df.photo[i]).suffix}"
        shutil.copy(df.photo[i], copy)
    copies = pd.DataFrame({"photo": [str(p) for p in sorted((tmp_path / "photos").glob("copy_of_*"))]})
    copies["colour"] = [df.colour[int(p.split("copy_of_")[1].split(".")[0])] for p in copies.photo]
    frame = pd.concat([df, copies], ignore_index=True)

    out = frame.claude.classify(
        "Which colour is this product photo? {photo:image}", list(COLOURS), poll_interval=0.01, progress=False
    )

    assert isinstance(out["classification"].dtype, pd.CategoricalDtype)
    assert list(out["classification"].cat.categories) == list(COLOURS)
    assert (out["classification"].astype(str) == out["colour"]).all(), out[
        out["classification"].astype(str) != out["colour"]
    ]
    assert sent(sim) == 300  # 320 rows, 20 of them copies of others under new names


def test_a_changed_file_is_sent_again_an_unchanged_one_is_not(sim: Simulator, tmp_path: Path):
    df = make_images(tmp_path, 12)
    prompt = "Colour? {photo:image}"
    first = df.claude.classify(prompt, list(COLOURS), poll_interval=0.01, progress=False)
    assert sent(sim) == 12
    Image.new("RGB", (24, 16), COLOURS["blue"]).save(df.photo[0], format="PNG")  # was red (same name)
    again = df.claude.classify(prompt, list(COLOURS), poll_interval=0.01, progress=False)
    assert sent(sim) == 13  # only the changed file
    assert first.classification[0] == "red" and again.classification[0] == "blue"
    assert (again.classification[1:] == first.classification[1:]).all()


def _within(seconds: float, call, unblock=None):
    """``call()``'s outcome, failing the test if it takes longer than ``seconds`` (a read that
    never ends: ``unblock`` then lets it go, so the thread does not outlive the test)."""
    import threading

    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if unblock is not None:
            unblock()
        pytest.fail(f"still reading after {seconds} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("value")


def test_cells_naming_no_regular_file_are_refused_at_once_naming_the_row(sim: Simulator, tmp_path: Path):
    """A FIFO would block the read forever, /dev/zero hash forever, a folder or a socket is no
    image: each is refused before anything is read or sent, naming the row (and its label)."""
    import os
    import socket

    ok = tmp_path / "ok.png"
    Image.new("RGB", (4, 4)).save(ok)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    sock_path = tmp_path / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))

    def unblock_fifo() -> None:
        with open(fifo, "wb"):  # a writer that closes: the blocked reader sees the end
            pass

    cases = [
        (str(fifo), "which is a FIFO \\(named pipe\\), not a regular file", unblock_fifo),
        ("/dev/zero", "/dev/zero, which is a character device, not a regular file", None),
        (str(tmp_path), "which is a directory, not a regular file", None),
        (str(sock_path), "which is a socket, not a regular file", None),
        (str(ok) + "\x00.png", "a path with a NUL byte", None),
    ]
    try:
        for bad, words, unblock in cases:
            df = pd.DataFrame({"x": [str(ok), bad]}, index=["a", "b"])
            with pytest.raises(MediaError, match=words) as info:
                _within(10, lambda df=df: df.claude.batch("{x:image}", progress=False), unblock)
            message = str(info.value)
            assert message.startswith("row 1 (index 'b'), column 'x': the cell ") and "set the cell to None" in message
            assert info.value.row == 1 and info.value.column == "x"
        # media_errors="skip" skips those rows instead, with the reason
        df = pd.DataFrame({"x": [str(ok), "/dev/zero", str(fifo)]})
        call = _within(
            10,
            lambda: calls.prepare(df, "{x:image}", output="o", model="claude-haiku-4-5", media_errors="skip"),
            unblock_fifo,
        )
        assert call.plan.skipped == {
            1: "column 'x': the cell names /dev/zero, which is a character device, not a regular file",
            2: f"column 'x': the cell names {fifo}, which is a FIFO (named pipe), not a regular file",
        }
    finally:
        sock.close()
    assert sim.stats()["batches.create"] == 0


def test_a_file_over_the_limit_is_refused_by_its_size_unread(sim: Simulator, tmp_path: Path):
    """A 100 GB (sparse) file that starts like a PNG: refused at once by its size, not hashed."""
    huge = tmp_path / "huge.png"
    with open(huge, "wb") as f:
        Image.new("RGB", (4, 4)).save(f, format="PNG")
        f.truncate(100 * 10**9)
    df = pd.DataFrame({"x": [str(huge)]})
    with pytest.raises(MediaError, match=r"is an image of 100,000,000,000 bytes .* over the API's 5 MB"):
        _within(10, lambda: df.claude.batch("{x:image}", progress=False))
    assert sim.stats()["batches.create"] == 0


def test_a_file_rewritten_between_planning_and_sending_is_not_sent_under_its_old_key(sim: Simulator, tmp_path: Path):
    """The key is of the bytes read when the call was planned; a file rewritten before its batch
    body is built must not be sent under that key (its answer would then be the answer to the old
    bytes for every later run): the call stops, naming the row, before anything is sent."""
    df = make_images(tmp_path, 3)
    red = Path(df.photo[0]).read_bytes()
    call = calls.prepare(df, "Colour? {photo:image}", output="label", model="claude-haiku-4-5")
    Image.new("RGB", (20, 10), COLOURS["blue"]).save(df.photo[0], format="PNG")  # was red: same name, same size
    assert len(Path(df.photo[0]).read_bytes()) == len(red)
    with pytest.raises(MediaError, match="changed after batchkit read it") as info:
        calls.submit(call)
    assert info.value.row == 0 and info.value.column == "photo"
    assert "row 0, column 'photo'" in str(info.value) and "run the call again" in str(info.value)
    assert sim.stats()["batches.create"] == 0
    Path(df.photo[0]).unlink()  # gone before sending: refused the same way
    with pytest.raises(MediaError, match="can no longer be read"):
        calls.submit(call)
    # run again: each file's answer is keyed by its own bytes, the red one's too
    Image.new("RGB", (24, 16), COLOURS["blue"]).save(df.photo[0], format="PNG")
    blue = df.claude.classify("Colour? {photo:image}", list(COLOURS), poll_interval=0.01, progress=False)
    Path(df.photo[0]).write_bytes(red)
    back = df.claude.classify("Colour? {photo:image}", list(COLOURS), poll_interval=0.01, progress=False)
    assert blue.classification[0] == "blue" and back.classification[0] == "red"


def test_pdfs_are_extracted_into_typed_columns(sim: Simulator, tmp_path: Path):
    rows = []
    for i in range(30):
        pages = [
            f"ACME Corp\ninvoice_number: INV-{1000 + i}\ncustomer: Customer {i}",
            *[f"line items, page {p}" for p in range(1 + i % 3)],
            f"total: {i * 10.25:.2f}\nitems: {i + 1}\npaid: {'yes' if i % 2 else 'no'}",
        ]
        path = tmp_path / f"invoice_{i}.pdf"
        path.write_bytes(media.text_pdf(pages, compress=bool(i % 2)))
        rows.append((str(path), len(pages)))
    df = pd.DataFrame(rows, columns=["scan", "n_pages"])

    out = df.claude.extract(
        "Extract the invoice fields. {scan:pdf}",
        {"invoice_number": str, "customer": str, "total": float, "items": int, "paid": bool},
        poll_interval=0.01,
        progress=False,
    )

    assert str(out["invoice_number"].dtype) == "string" and str(out["total"].dtype) == "Float64"
    assert str(out["items"].dtype) == "Int64" and str(out["paid"].dtype) == "boolean"
    assert list(out["invoice_number"]) == [f"INV-{1000 + i}" for i in range(30)]
    assert list(out["customer"]) == [f"Customer {i}" for i in range(30)]
    assert list(out["total"]) == [round(i * 10.25, 2) for i in range(30)]
    assert list(out["items"]) == [i + 1 for i in range(30)]
    assert list(out["paid"]) == [bool(i % 2) for i in range(30)]


def test_text_before_and_after_a_placeholder_becomes_text_blocks(tmp_path: Path):
    df = make_images(tmp_path, 2)
    df["sku"] = ["A1", "B2"]
    call = calls.prepare(df, "Product {sku}:\n{photo:image}\nName its colour.", output="o", model="claude-haiku-4-5")
    params = json.loads(call.plan.body(call.plan.row_keys[0]))
    blocks = params["messages"][0]["content"]
    assert [b["type"] for b in blocks] == ["text", "image", "text"]
    assert blocks[0]["text"] == "Product A1:\n" and blocks[2]["text"] == "\nName its colour."
    assert blocks[1]["source"]["media_type"] == "image/png"
    assert blocks[1]["source"]["data"] == media.read_cell(df.photo[0], "image").block()["source"]["data"]


def test_image_columns_from_polars_or_pyarrow_key_like_pandas_and_nulls_skip(tmp_path: Path):
    import polars as pl
    import pyarrow as pa

    df = make_images(tmp_path, 4)
    photos = [p if i != 2 else None for i, p in enumerate(df["photo"])]
    df["photo"] = photos
    df["sku"] = ["A1", "B2", "C3", "D4"]
    prompt = "Product {sku}: {photo:image}"
    kw = {"output": "o", "model": "claude-haiku-4-5"}
    keys = calls.prepare(df, prompt, **kw).plan.row_keys
    assert keys[2] is None and len(set(keys)) == 4
    assert (
        calls.prepare({"photo": pl.Series(photos), "sku": pl.Series(df["sku"].tolist())}, prompt, **kw).plan.row_keys
        == keys
    )
    assert calls.prepare({"photo": pa.array(photos), "sku": df["sku"].tolist()}, prompt, **kw).plan.row_keys == keys


def test_cells_may_be_paths_bytes_pillow_images_or_urls(sim: Simulator, tmp_path: Path):
    path = tmp_path / "red.png"
    Image.new("RGB", (20, 20), COLOURS["red"]).save(path)
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), COLOURS["green"]).save(buf, format="JPEG")
    df = pd.DataFrame(
        {
            "img": [
                path,
                buf.getvalue(),
                Image.new("RGB", (20, 20), COLOURS["blue"]),
                "https://example.com/cat.jpg",
                None,
                str(tmp_path / "gone.png"),
            ]
        }
    )
    call = calls.prepare(df, "{img:image}", output="o", model="claude-haiku-4-5")
    assert call.plan.skipped == {
        4: "missing value in column 'img'",
        5: f"column 'img': file not found: {tmp_path / 'gone.png'}",
    }
    url = json.loads(call.plan.body(call.plan.row_keys[3]))["messages"][0]["content"][0]
    assert url == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}

    with pytest.warns(batchkit.BatchkitWarning, match="2 skipped on purpose"):
        out = df.claude.classify("{img:image}", list(COLOURS), poll_interval=0.01, progress=False)
    assert list(out.classification[:3]) == ["red", "green", "blue"]
    assert out.classification[4:].isna().all()


def test_a_prompt_function_may_return_content_blocks(sim: Simulator, tmp_path: Path):
    df = make_images(tmp_path, 6)

    def prompt(row: pd.Series) -> list:
        return ["Two photos; name the first one's colour.", Path(row.photo), Path(df.photo[5])]

    out = df.claude.classify(prompt, list(COLOURS), poll_interval=0.01, progress=False)
    assert (out["classification"].astype(str) == df["colour"]).all()
    with pytest.raises(PromptError, match="type 'video'"):
        df.claude.batch(lambda row: [{"type": "video", "url": "x"}])


def test_limits_are_checked_before_any_call_naming_the_row(sim: Simulator, tmp_path: Path):
    wide = tmp_path / "wide.png"
    Image.new("L", (8001, 2)).save(wide)
    bmp = tmp_path / "photo.bmp"
    Image.new("RGB", (4, 4)).save(bmp)
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(media.text_pdf(["hello"]))
    long_pdf = tmp_path / "long.pdf"
    long_pdf.write_bytes(media.text_pdf(["p"] * 101))
    ok = tmp_path / "ok.png"
    Image.new("RGB", (4, 4)).save(ok)
    cases = [
        (ok, wide, "{x:image}", "8001×2 px, over the API's 8000×8000"),
        (ok, bmp, "{x:image}", "BMP data, not a type the API accepts"),
        (ok, pdf, "{x:image}", "is a PDF, in an {…:image} placeholder"),
        (pdf, ok, "{x:pdf}", "is an image \\(image/png\\), in a {…:pdf} placeholder"),
        (ok, long_pdf, "{x:media}", "101 pages, over the API's 100"),
    ]
    for good, bad, prompt, words in cases:
        df = pd.DataFrame({"x": [str(good), str(bad)]})
        with pytest.raises(MediaError, match=words) as info:
            df.claude.batch(prompt)
        assert info.value.row == 1 and info.value.column == "x"
        assert "row 1, column 'x'" in str(info.value) and "set the cell to None" in str(info.value)
    with pytest.raises(CellError, match="must be a file path, an http\\(s\\) URL, bytes or a Pillow image"):
        pd.DataFrame({"x": [3]}).claude.batch("{x:image}")
    big = tmp_path / "big.png"
    Image.new("RGB", (2001, 2)).save(big)
    with pytest.raises(MediaError, match=r"21 images .* at most 2000×2000"):
        pd.DataFrame({"x": [str(ok)]}).claude.batch(lambda row: [Path(ok)] * 20 + [big])
    with pytest.raises(MediaError, match="101 images, over the API's 100"):
        pd.DataFrame({"x": [str(ok)]}).claude.batch(lambda row: [Path(ok)] * 101)
    assert sim.stats()["batches_created"] == 0


def test_images_are_cut_into_batches_by_bytes(sim: Simulator, tmp_path: Path):
    rng = __import__("numpy").random.default_rng(0)
    paths = []
    for i in range(24):
        path = tmp_path / f"noise_{i}.png"
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype="uint8")).save(path)  # ~12 KB, incompressible
        paths.append(str(path))
    df = pd.DataFrame({"p": paths})
    size = sum(Path(p).stat().st_size for p in paths)
    limit = 60_000
    out = df.claude.batch("Describe {p:image}", chunk_bytes=limit, poll_interval=0.01, progress=False)
    assert out["response"].notna().all()
    batches = Store.resolve(out.attrs["batchkit_store"]).batches()
    assert len(batches) >= size * 4 / 3 / limit  # base64 makes them a third larger
    assert sum(b["n_requests"] for b in batches) == 24
    for b in batches:
        assert len(Store.resolve(out.attrs["batchkit_store"]).batch_body(b["id"])) <= limit


def test_estimate_prices_images_and_pdfs_by_the_documented_rules(tmp_path: Path):
    rows = []
    for i, (w, h) in enumerate([(1000, 1000), (3136, 1568), (300, 200)]):
        path = tmp_path / f"i{i}.png"
        Image.new("RGB", (w, h), (i, 0, 0)).save(path)
        rows.append(str(path))
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(media.text_pdf(["a", "b", "c"]))
    df = pd.DataFrame({"f": [*rows, str(pdf)]})
    guess = df.claude.estimate("{f:media}", model="claude-haiku-4-5", typical_output_tokens=10)
    # 1334 + 1640 (scaled to 1568×784) + 80, and three Letter pages at 2534 each
    media_tokens = 1334 + 1640 + 80 + 3 * 2534
    assert guess.token_source == "offline"
    assert guess.input_tokens == media_tokens + 4 * (3 + 4)  # and each request's and message's overhead
    assert any("width×height/750" in note for note in guess.notes)


def test_count_tokens_sees_the_images_too(sim: Simulator, tmp_path: Path):
    path = tmp_path / "a.png"
    Image.new("RGB", (1000, 1000), (1, 2, 3)).save(path)
    df = pd.DataFrame({"f": [str(path)]})
    counted = df.claude.estimate("{f:image}", model="claude-haiku-4-5", client=sim.client())
    offline = df.claude.estimate("{f:image}", model="claude-haiku-4-5")
    assert counted.token_source == "count_tokens"
    assert counted.input_tokens == offline.input_tokens


def test_blocks_a_prompt_function_returns_are_priced_too(tmp_path: Path):
    import base64

    buf = io.BytesIO()
    Image.new("RGB", (1500, 750)).save(buf, format="JPEG")
    block = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": base64.b64encode(buf.getvalue()).decode()},
    }
    df = pd.DataFrame({"t": ["a"]})
    guess = df.claude.estimate(lambda row: [block, "Describe it."], model="claude-haiku-4-5")
    assert guess.input_tokens == 3 + 4 + 1500 + 3  # 1500×750/750, and "Describe it." is 3 tokens


def test_entry_sizes_are_known_before_any_entry_is_built(tmp_path: Path):
    pdf = tmp_path / "d.pdf"
    pdf.write_bytes(media.text_pdf(['été: 3 "quoted"', "two"]))
    df = make_images(tmp_path, 8)
    df["other"] = [str(pdf), b"GIF89a\x05\x00\x03\x00" + bytes(20), 'https://example.com/a b.png?x="1"', *df.photo[:5]]
    df["note"] = ['naïve "text" \\ with escapes', "", "x", "y", "z", "w", "v", "\n"]
    call = calls.prepare(
        df, "{note} {photo:image} then {other:media} {note}", output="o", model="claude-haiku-4-5", system="Be brief."
    )
    lines = call.plan.lines
    assert isinstance(lines, batchkit.core.plan.MediaLines)
    for key in lines:
        line = lines[key]
        assert len(line) == lines.size(key), key
        assert json.loads(line)["custom_id"] == key
    chunks = batchkit.core.plan.chunk_requests(lines, max_bytes=3_000)
    assert len(chunks) > 1
    for chunk in chunks:
        size, pieces = chunk.stored()
        body = b"".join(pieces)
        assert len(body) == size == len(chunk.body) <= 3_000
        assert [r["custom_id"] for r in json.loads(body)["requests"]] == chunk.keys


def test_media_errors_skip_leaves_refused_files_out_with_the_reason(sim: Simulator, tmp_path: Path):
    df = make_images(tmp_path, 4)
    Image.new("RGB", (4, 4)).save(tmp_path / "scan.bmp")
    Image.new("L", (8001, 2)).save(tmp_path / "wide.png")
    df.loc[1, "photo"] = str(tmp_path / "scan.bmp")
    df.loc[2, "photo"] = str(tmp_path / "wide.png")
    with pytest.raises(MediaError, match="row 1"):
        df.claude.classify("{photo:image}", list(COLOURS), poll_interval=0.01, progress=False)
    with pytest.warns(batchkit.BatchkitWarning, match="2 skipped on purpose"):
        out = df.claude.classify(
            "{photo:image}", list(COLOURS), media_errors="skip", poll_interval=0.01, progress=False
        )
    assert out.classification.isna().tolist() == [False, True, True, False]
    assert (out.classification[[0, 3]].astype(str) == df.colour[[0, 3]]).all()
    call = calls.prepare(df, "{photo:image}", output="o", model="claude-haiku-4-5", media_errors="skip")
    assert call.plan.skipped == {
        1: "column 'photo': the cell is BMP data, not a type the API accepts (image/jpeg, image/png, image/gif, "
        "image/webp or application/pdf)",
        2: "column 'photo': the cell is an image of 8001×2 px, over the API's 8000×8000",
    }
    many = pd.DataFrame({"x": [1, 2]})
    call = calls.prepare(
        many,
        lambda row: [Path(df.photo[0])] * (101 if row.x == 1 else 1),
        output="o",
        model="claude-haiku-4-5",
        media_errors="skip",
    )
    assert call.plan.skipped == {0: "its request holds 101 images, over the API's 100 per request"}
    assert call.plan.row_keys[1] is not None


MEDIA_CHILD = """
import sys
import anthropic, pandas as pd
import batchkit
base_url, store, folder = sys.argv[1:4]
client = anthropic.Anthropic(base_url=base_url, api_key="sk-sim-test")
df = pd.read_csv(folder + "/photos.csv")
out = df.claude.classify("Colour? {photo:image}", sorted(set(df.colour)), client=client, store=store,
                         poll_interval=0.05, chunk_bytes=4_000, progress=False)
print("MATCHED", int((out.classification.astype(str) == out.colour).sum()))
"""


@pytest.mark.slow
def test_an_image_job_killed_after_its_first_create_resumes_from_the_stored_bodies(tmp_path: Path):
    import signal
    import subprocess

    from batchkit.simulator import spawn
    from tests.conftest import run_script

    df = make_images(tmp_path, 12)
    df.to_csv(tmp_path / "photos.csv", index=False)
    store = str(tmp_path / "jobs.sqlite3")

    def child(crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_script(MEDIA_CHILD, sim.base_url, store, str(tmp_path), crash_at=crash_at)

    with spawn(processing=Processing(fixed_latency=0.2, per_request=0.0)) as sim:
        crashed = child("after_create")  # the first batch created, the rest only written down
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        planned = Store.resolve(store).batches()
        assert len(planned) >= 3 and sum(b["state"] == "submitting" for b in planned) >= 2
        resumed = child()
        assert resumed.returncode == 0, resumed.stderr
        assert "MATCHED 12" in resumed.stdout
        stats = sim.stats()
    assert stats["batches_created"] == len(planned)  # the stored bodies, each created once
    assert stats["batch_requests_received"] == 12


def test_pdf_pages_are_found_in_compressed_object_streams_too():
    import zlib

    objects = b"<< /Type /Pages /Kids [4 0 R 5 0 R 6 0 R] /Count 3 >> << /Type /Page >> << /Type /Page >>"
    packed = zlib.compress(objects)
    pdf = (
        b"%PDF-1.5\n3 0 obj\n<< /Type /ObjStm /N 3 /First 0 /Length "
        + str(len(packed)).encode()
        + b" /Filter /FlateDecode >>\nstream\n"
        + packed
        + b"\nendstream\nendobj\n%%EOF\n"
    )
    assert media.pdf_pages(pdf) == 3
    buf = io.BytesIO()  # Pillow writes PDFs too: one page per image
    Image.new("RGB", (100, 100)).save(buf, format="PDF", save_all=True, append_images=[Image.new("RGB", (9, 9))] * 4)
    assert media.pdf_pages(buf.getvalue()) == 5
    assert media.pdf_pages(media.text_pdf(["a"] * 7, compress=True)) == 7


def test_the_media_module_examples_hold():
    import doctest

    from batchkit.core import pdfgen

    assert doctest.testmod(media).failed == 0
    assert doctest.testmod(pdfgen).failed == 0  # text_pdf, re-exported by media


def test_a_damaged_image_skips_its_row(sim: Simulator, tmp_path: Path):
    df = make_images(tmp_path, 3)
    Path(df.photo[1]).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(4))  # a PNG cut short
    call = calls.prepare(df, "{photo:image}", output="o", model="claude-haiku-4-5")
    assert call.plan.skipped == {
        1: f"column 'photo': cannot read the size of the image/png image {df.photo[1]} "
        "from its header (damaged or truncated?)"
    }


def test_a_long_system_prompt_is_cached_in_image_calls(tmp_path: Path):
    df = make_images(tmp_path, 3)
    system = "You tag product photos by their main colour. " * 400  # well over 4,096 tokens
    call = calls.prepare(df, "Colour? {photo:image}", output="o", model="claude-haiku-4-5", system=system)
    params = json.loads(call.plan.body(call.plan.row_keys[0]))
    assert call.cached and params["system"][-1]["cache_control"]["type"] == "ephemeral"
    assert [b["type"] for b in params["messages"][0]["content"]] == ["text", "image"]
    short = calls.prepare(df, "Colour? {photo:image}", output="o", model="claude-haiku-4-5", system="Be brief.")
    assert not short.cached and "cache_control" not in short.plan.body(short.plan.row_keys[0]).decode()


def _shapes(folder: Path) -> pd.DataFrame:
    """Simple shapes on white: a circle, a square and a triangle in each colour, three sizes, PNG and JPEG."""
    from PIL import ImageDraw

    rows = []
    for colour, rgb in COLOURS.items():
        for kind in ("circle", "square", "triangle"):
            for size in (0.3, 0.5, 0.8):
                for fmt in ("PNG", "JPEG"):
                    image = Image.new("RGB", (200, 150), (255, 255, 255))
                    draw, r = ImageDraw.Draw(image), size * 75
                    box = [100 - r, 75 - r, 100 + r, 75 + r]
                    if kind == "circle":
                        draw.ellipse(box, fill=rgb)
                    elif kind == "square":
                        draw.rectangle(box, fill=rgb)
                    else:
                        draw.polygon([(100, 75 - r), (100 - r, 75 + r), (100 + r, 75 + r)], fill=rgb)
                    path = folder / f"{colour}-{kind}-{size}.{fmt.lower()}"
                    image.save(path, format=fmt)
                    rows.append({"photo": str(path), "colour": colour})
    return pd.DataFrame(rows)


def test_shapes_on_white_are_answered_by_the_shape_colour_as_the_simulator_readme_says(sim: Simulator, tmp_path: Path):
    df = _shapes(tmp_path)
    out = df.claude.classify(
        "Which colour is the shape? {photo:image}", list(COLOURS), output="answer", poll_interval=0.01, progress=False
    )
    right = int((out["answer"].astype(str) == out["colour"]).sum())
    assert right == len(df), out[out["answer"].astype(str) != out["colour"]]  # a red circle on white is red
    readme = (Path(batchkit.__file__).parent / "simulator" / "README.md").read_text(encoding="utf-8")
    assert f"Measured on {len(df)} simple shapes on white" in " ".join(readme.split())
    assert f"is named for {right} of {len(df)}" in " ".join(readme.split())
