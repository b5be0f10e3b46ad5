"""Generated PDFs: documents with known text, for tests, demos and notebooks. Pure.

:func:`text_pdf` writes the smallest valid PDF that holds its pages' text (Helvetica, one page per
item), so a notebook can show ``{scan:pdf}`` prompts and a test can check what a PDF's request
carries without shipping files. :mod:`batchkit.core.media` re-exports it (``batchkit.media.text_pdf``,
``batchkit.text_pdf``).
"""

from __future__ import annotations

__all__ = ["LETTER", "text_pdf"]

LETTER = (612.0, 792.0)
"""US Letter in points: a generated page's size, and the size assumed for a PDF page that does not say."""


def text_pdf(pages: list[str], *, size: tuple[float, float] = LETTER, compress: bool = False) -> bytes:
    r"""A minimal valid PDF with one page of text per item of ``pages`` (lines split on ``\n``),
    in Helvetica 11 pt — for tests, demos and notebooks that need documents with known text.

    >>> from batchkit.core.media import pdf_pages, sniff
    >>> pdf = text_pdf(["invoice_number: INV-7", "page two"])
    >>> sniff(pdf), pdf_pages(pdf)
    ('application/pdf', 2)
    """
    import zlib

    w, h = size
    objects: list[bytes] = [b"", b""]  # 1: catalog, 2: page tree (filled in below)
    font = 3
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for text in pages:
        lines = text.split("\n")
        ops = [b"BT /F1 11 Tf 14 TL 72 %d Td" % int(h - 72)]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(b"(" + escaped.encode("latin-1", "replace") + b") Tj T*")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        if compress:
            stream = zlib.compress(stream)
            objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream")
        else:
            objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (w, h, content, font)
        )
        kids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
