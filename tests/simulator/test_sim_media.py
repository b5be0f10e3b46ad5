"""Images and PDF documents through the real SDK: validated like the API, counted by its
documented token rules, answered from their content."""

from __future__ import annotations

import base64
import io
import json

import anthropic
import pytest
from PIL import Image

from batchkit.core.media import text_pdf
from batchkit.simulator import Simulator

MODEL = "claude-haiku-4-5"


def png(size: tuple[int, int], colour: tuple[int, int, int] = (220, 40, 40), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


def image_block(data: bytes, media_type: str = "image/png") -> dict:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()},
    }


def pdf_block(data: bytes) -> dict:
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(data).decode()},
    }


def params(*blocks: dict, text: str = "Describe it.", **extra) -> dict:
    return {
        "model": MODEL,
        "max_tokens": 200,
        "messages": [{"role": "user", "content": [*blocks, {"type": "text", "text": text}]}],
        **extra,
    }


def results(client: anthropic.Anthropic, requests: list[dict]) -> dict:
    created = client.messages.batches.create(requests=requests)
    return {r.custom_id: r.result for r in client.messages.batches.results(created.id)}


def test_bad_media_comes_back_errored_with_the_apis_message(instant: Simulator, iclient: anthropic.Anthropic):
    good = png((10, 10))
    bad = {
        "bad-base64": (
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "%%%"}},
            "not valid base64",
        ),
        "bmp-type": (image_block(good, "image/bmp"), "Input should be 'image/jpeg', 'image/png'"),
        "mismatch": (image_block(good, "image/jpeg"), "does not match the provided media type image/jpeg"),
        "not-an-image": (image_block(b"hello world, no image here", "image/png"), "Could not process image"),
        "too-wide": (image_block(png((8001, 1))), "exceed max allowed size: 8000 pixels"),
        "pdf-not-pdf": (pdf_block(good), "PDF specified was not valid"),
        "pdf-pages": (pdf_block(text_pdf(["p"] * 101)), "maximum of 100 PDF pages"),
        "no-source": ({"type": "image"}, "source: Field required"),
    }
    requests = [{"custom_id": cid, "params": params(block)} for cid, (block, _) in bad.items()]
    requests.append({"custom_id": "fine", "params": params(image_block(good), pdf_block(text_pdf(["a: b"])))})
    found = results(iclient, requests)
    assert found["fine"].type == "succeeded"
    for cid, (_, words) in bad.items():
        assert found[cid].type == "errored", cid
        assert found[cid].error.error.type == "invalid_request_error"
        assert words in found[cid].error.error.message, (cid, found[cid].error.error.message)
    assert found["too-wide"].error.error.message.startswith("messages.0.content.0.image.source.base64.data")


def test_per_request_image_limits(instant: Simulator, iclient: anthropic.Anthropic):
    small, mid = png((8, 8)), png((2001, 4))
    found = results(
        iclient,
        [
            {"custom_id": "101", "params": params(*[image_block(small)] * 101)},
            {"custom_id": "21-large", "params": params(*[image_block(small)] * 20, image_block(mid))},
            {"custom_id": "20-large", "params": params(*[image_block(small)] * 19, image_block(mid))},
        ],
    )
    assert "Too many images" in found["101"].error.error.message
    assert "many-image requests: 2000 pixels" in found["21-large"].error.error.message
    assert found["20-large"].type == "succeeded"


def test_tokens_follow_the_documented_rules(iclient: anthropic.Anthropic):
    def count(*blocks: dict) -> int:
        return iclient.messages.count_tokens(
            model=MODEL, messages=[{"role": "user", "content": list(blocks)}]
        ).input_tokens

    text = {"type": "text", "text": "x" * 40}  # 10 tokens
    base = count(text)
    assert count(image_block(png((1000, 1000))), text) - base == 1334  # ceil(1000*1000/750)
    # a long edge over 1568 px is scaled down first: 3136×1568 → 1568×784
    assert count(image_block(png((3136, 1568))), text) - base == 1640
    assert count(image_block(png((300, 200), fmt="JPEG"), "image/jpeg"), text) - base == 80
    # a Letter page is an image of 1212×1568 (2534 tokens) plus its text
    one = count(pdf_block(text_pdf(["abcd" * 10])), text) - base
    three = count(pdf_block(text_pdf(["abcd" * 10] * 3)), text) - base
    assert one == 2534 + 10
    assert three == 3 * 2534 + (3 * 40 + 2 + 3) // 4


def test_answers_come_from_the_content(instant: Simulator, iclient: anthropic.Anthropic):
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": ["red", "green", "blue"]}},
        "required": ["label"],
        "additionalProperties": False,
    }
    fmt = {"format": {"type": "json_schema", "schema": schema}}
    colours = {"r": (230, 30, 30), "g": (30, 180, 50), "b": (30, 60, 230)}
    requests = [
        {"custom_id": cid, "params": params(image_block(png((30, 20), rgb)), output_config=fmt)}
        for cid, rgb in colours.items()
    ]
    invoice = text_pdf(
        ["Invoice\ninvoice_number: INV-42\ncustomer: Ada Lovelace", "total: 1,234.50\npages: 2"], compress=True
    )
    fields = {
        "type": "object",
        "properties": {
            "invoice_number": {"type": "string"},
            "customer": {"type": "string"},
            "total": {"type": "number"},
            "pages": {"type": "integer"},
        },
        "required": ["invoice_number", "customer", "total", "pages"],
        "additionalProperties": False,
    }
    requests.append(
        {
            "custom_id": "pdf",
            "params": params(pdf_block(invoice), output_config={"format": {"type": "json_schema", "schema": fields}}),
        }
    )
    requests.append({"custom_id": "text", "params": params(image_block(png((5, 5), (30, 60, 230))))})
    found = results(iclient, requests)
    for cid, name in (("r", "red"), ("g", "green"), ("b", "blue")):
        assert json.loads(found[cid].message.content[0].text) == {"label": name}
    assert json.loads(found["pdf"].message.content[0].text) == {
        "invoice_number": "INV-42",
        "customer": "Ada Lovelace",
        "total": 1234.5,
        "pages": 2,
    }
    assert "blue" in found["text"].message.content[0].text


@pytest.mark.parametrize("fmt,media_type", [("GIF", "image/gif"), ("WEBP", "image/webp"), ("JPEG", "image/jpeg")])
def test_every_accepted_image_type_is_read(iclient: anthropic.Anthropic, fmt: str, media_type: str):
    data = png((640, 480), fmt=fmt)
    tokens = iclient.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": [image_block(data, media_type)]}]
    ).input_tokens
    assert tokens == 3 + 4 + 410  # ceil(640*480/750)
