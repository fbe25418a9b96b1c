"""digitnet.images from outside: the whole preprocessing, the formats Pillow reads, and the pictures that must be
refused (the steps' own tests are in test_images_<module>.py)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitnet import images
from digitnet.images import ImageError
from digitnet.images.decode import WORK_SIDE
from digitnet.images.ink import crop_to_ink
from digitnet.images.normalise import BOX_SIZE, FINE_SIDE, STROKE_BAND, _resample_longer_side, stroke_width


def seven(size=(120, 160), width=12, ink=0, paper=255, mode="L", offset=(0, 0)) -> Image.Image:
    """A '7' drawn as a thick polyline: asymmetric, so flips and rotations show."""
    image = Image.new(mode, size, paper)
    dx, dy = offset
    ImageDraw.Draw(image).line([(25 + dx, 30 + dy), (95 + dx, 30 + dy), (50 + dx, 135 + dy)],
                               fill=ink, width=width, joint="curve")
    return image


def ring(size=(120, 160), width=12, ink=0, paper=255, mode="L") -> Image.Image:
    """A '0': an ellipse outline."""
    image = Image.new(mode, size, paper)
    ImageDraw.Draw(image).ellipse([25, 25, 95, 135], outline=ink, width=width)
    return image


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two 28x28 results (1.0: the same picture), allowing a shift of one pixel
    (rounding the centre of mass to whole pixels can move a digit by one)."""
    a, b = np.reshape(a, (28, 28)), np.reshape(b, (28, 28))
    return max(float(np.corrcoef(np.roll(a, (dy, dx), axis=(0, 1)).ravel(), b.ravel())[0, 1])
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    mass = image.sum()
    return float((rows * image).sum() / mass), float((cols * image).sum() / mass)


def nonzero_extent(image: np.ndarray) -> tuple[int, int]:
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """The 28x28 result for a clean black '7' on white: what the variants below must reproduce."""
    return images.preprocess(seven())


# ---------------------------------------------------------------------------
# The MNIST normalisation


def test_result_is_mnist_shaped(reference):
    assert reference.shape == (28, 28) and reference.dtype == np.float32
    assert reference.min() >= 0 and reference.max() == pytest.approx(1.0)
    assert max(nonzero_extent(reference)) == 20  # the longer side fills MNIST's 20 px box
    assert reference[0].sum() == reference[-1].sum() == 0  # a margin all round, white on black


def test_preprocessed_digit_is_centred_by_mass(reference):
    row, col = centre_of_mass(reference)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5


def test_position_and_size_on_the_page_do_not_matter(reference):
    shifted = seven(size=(400, 300), offset=(200, 90))
    big = seven(size=(120, 160)).resize((480, 640), Image.BICUBIC)
    assert similarity(images.preprocess(shifted), reference) > 0.99
    assert similarity(images.preprocess(big), reference) > 0.9


def width_at_box_scale(result: np.ndarray) -> float:
    """Stroke width of a 28x28 result at the 20 px box scale, measured as normalise_strokes does."""
    fine = _resample_longer_side(crop_to_ink(result), FINE_SIDE)
    return stroke_width(fine) * BOX_SIZE / FINE_SIDE


@pytest.mark.parametrize("pen", ["thin", "thick"])
def test_thin_and_thick_strokes_come_out_mnist_like(pen):
    if pen == "thin":  # a 1 px line on a 250x300 drawing: a twentieth of MNIST's width
        drawn = seven(size=(500, 600), width=2).resize((250, 300), Image.BOX)
    else:  # a marker about twice MNIST's width
        drawn = seven(size=(160, 200), width=30, offset=(20, 20))
    low, high = STROKE_BAND
    assert not low <= width_at_box_scale(np.asarray(drawn) < 250) <= high
    assert low <= width_at_box_scale(images.preprocess(drawn)) <= high


# ---------------------------------------------------------------------------
# Ink versus paper


def test_grey_paper_with_darker_ink_is_inverted(reference):
    """Dim light: the paper is mid-grey (below 0.5) but the ink is still the darker thing."""
    dim = seven(ink=20, paper=100)
    assert similarity(images.preprocess(dim), reference) > 0.98


def test_invert_override(reference):
    light_on_dark = seven(ink=255, paper=0)
    assert similarity(images.preprocess(light_on_dark, invert="no"), reference) > 0.98
    assert similarity(images.preprocess(seven(), invert="yes"), reference) > 0.98
    with pytest.raises(ImageError):  # told the ink is dark on a white-on-black picture: no dark ink at all
        images.preprocess(light_on_dark, invert="yes")
    with pytest.raises(ValueError):
        images.preprocess(seven(), invert="sometimes")


def test_coloured_ink_is_found_even_when_as_bright_as_the_paper(reference):
    yellow = seven(ink=(255, 220, 0), paper=(255, 255, 255), mode="RGB")
    blue = seven(ink=(30, 40, 200), paper=(250, 245, 230), mode="RGB")
    assert similarity(images.preprocess(yellow), reference) > 0.98
    assert similarity(images.preprocess(blue), reference) > 0.98


def test_illumination_gradient_and_noise_are_not_ink(reference):
    rng = np.random.default_rng(0)
    page = np.asarray(seven(size=(240, 320), offset=(60, 80)), np.float32) / 255
    light = np.linspace(1.0, 0.45, page.shape[1])[None, :] * np.linspace(1.0, 0.8, page.shape[0])[:, None]
    photo = page * light * 0.9 + 0.05 + rng.normal(0, 0.04, page.shape)
    photo = Image.fromarray((np.clip(photo, 0, 1) * 255).astype(np.uint8))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=60)
    result = images.preprocess(Image.open(buffer))
    assert similarity(result, reference) > 0.95
    assert max(nonzero_extent(result)) == 20


def test_specks_away_from_the_digit_are_ignored(reference):
    dusty = seven(size=(300, 300))
    draw = ImageDraw.Draw(dusty)
    draw.ellipse([270, 280, 273, 283], fill=0)
    draw.point([(200, 20), (10, 290)], fill=0)
    assert similarity(images.preprocess(dusty), reference) > 0.99


# ---------------------------------------------------------------------------
# Transparency


def rgba_seven(ink_rgb, hidden_rgb) -> Image.Image:
    """Ink strokes on a transparent canvas; `hidden_rgb` is the colour stored under transparent pixels."""
    alpha = seven(ink=255, paper=0)
    colour = Image.new("RGB", alpha.size, hidden_rgb)
    colour.paste(Image.new("RGB", alpha.size, ink_rgb), mask=alpha.point(lambda v: 255 if v else 0))
    colour.putalpha(alpha)
    return colour


@pytest.mark.parametrize("ink, hidden", [((0, 0, 0), (0, 0, 0)),          # drawing-app export: all black
                                         ((0, 0, 0), (255, 255, 255)),
                                         ((255, 255, 255), (0, 0, 0)),
                                         ((255, 255, 255), (255, 255, 255)),
                                         ((200, 30, 30), (0, 0, 0))])
def test_ink_on_transparent_canvas(reference, ink, hidden):
    assert similarity(images.preprocess(rgba_seven(ink, hidden)), reference) > 0.98


def test_mostly_opaque_picture_gets_its_paper_under_transparent_corners(reference):
    scan = seven().convert("RGBA")
    corners = Image.new("L", scan.size, 255)
    ImageDraw.Draw(corners).rectangle([0, 0, 15, 15], fill=0)
    ImageDraw.Draw(corners).rectangle([104, 144, 119, 159], fill=0)
    scan.putalpha(corners)
    pixels = np.asarray(scan).copy()
    pixels[:16, :16, :3] = 0  # the colour under the transparent corners is black
    assert similarity(images.preprocess(pixels), reference) > 0.98


def test_grey_with_alpha(tmp_path, reference):
    la = Image.merge("LA", [Image.new("L", (120, 160), 0), seven(ink=255, paper=0)])
    la.save(tmp_path / "la.png")
    assert similarity(images.load_image(tmp_path / "la.png").reshape(28, 28), reference) > 0.98


# ---------------------------------------------------------------------------
# File formats


@pytest.mark.parametrize("name, convert, options", [
    ("grey.png", "L", {}),
    ("rgb.png", "RGB", {}),
    ("palette.png", "P", {}),
    ("rgb.jpg", "RGB", {"quality": 85}),
    ("cmyk.jpg", "CMYK", {"quality": 90}),
    ("grey.bmp", "L", {}),
    ("rgb.tiff", "RGB", {}),
    ("rgb.webp", "RGB", {"quality": 90}),
    ("bilevel.png", "1", {}),
])
def test_formats(tmp_path, reference, name, convert, options):
    seven().convert(convert).save(tmp_path / name, **options)
    result = images.load_image(tmp_path / name)
    assert result.shape == (784,) and result.dtype == np.float32
    assert similarity(result.reshape(28, 28), reference) > 0.97


def test_sixteen_bit_png(tmp_path, reference):
    deep = (np.asarray(seven(), np.float32) / 255 * 50000 + 5000).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    assert similarity(images.load_image(tmp_path / "deep.png").reshape(28, 28), reference) > 0.98


def test_palette_png_with_transparency(tmp_path, reference):
    rgba_seven((0, 0, 0), (0, 0, 0)).quantize(colors=4, method=Image.Quantize.FASTOCTREE).save(tmp_path / "p.png")
    assert similarity(images.load_image(tmp_path / "p.png").reshape(28, 28), reference) > 0.95


def test_gif_uses_the_first_frame(tmp_path, reference):
    first, second = seven().convert("P"), ring().convert("P")
    first.save(tmp_path / "anim.gif", save_all=True, append_images=[second], duration=100)
    assert Image.open(tmp_path / "anim.gif").n_frames == 2
    assert similarity(images.load_image(tmp_path / "anim.gif").reshape(28, 28), reference) > 0.98


def test_exif_rotation_is_applied(tmp_path, reference):
    upside_down = seven().rotate(180)
    exif = Image.Exif()
    exif[0x0112] = 3  # "rotate 180 to display"
    upside_down.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    assert similarity(images.load_image(tmp_path / "phone.jpg").reshape(28, 28), reference) > 0.97


@pytest.mark.parametrize("carrier", ["eXIf chunk", "XMP packet", "ImageMagick's raw profile"])
def test_a_png_s_orientation_is_applied_wherever_pillow_finds_it(tmp_path, reference, carrier):
    """A PNG's orientation is read where getexif reads it (decode._PNG_ORIENTATION_SOURCES): the
    shortcut for PNGs without them must not skip one."""
    from PIL import PngImagePlugin

    exif = Image.Exif()
    exif[0x0112] = 3  # "rotate 180 to display"
    info, extra = PngImagePlugin.PngInfo(), {}
    if carrier == "eXIf chunk":
        extra["exif"] = exif
    elif carrier == "XMP packet":
        info.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description '
                      'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="3"/></rdf:RDF></x:xmpmeta>')
    else:
        raw = exif.tobytes()
        info.add_text("Raw profile type exif", f"\nexif\n{len(raw):8d}\n{raw.hex()}\n", zip=True)
    seven().rotate(180).save(tmp_path / "turned.png", pnginfo=info, **extra)
    assert similarity(images.load_image(tmp_path / "turned.png").reshape(28, 28), reference) > 0.97


def test_a_png_without_orientation_is_read_without_building_its_exif(tmp_path, monkeypatch):
    """The canvas's case: no chunk that could hold an orientation, so getexif (0.05 ms) is not asked."""
    from PIL import PngImagePlugin

    asked = []
    real = PngImagePlugin.PngImageFile.getexif
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "getexif", lambda self: asked.append(1) or real(self))
    seven().save(tmp_path / "plain.png")
    images.open_image(tmp_path / "plain.png")
    assert asked == []
    exif = Image.Exif()
    exif[0x0112] = 1
    seven().save(tmp_path / "tagged.png", exif=exif)
    images.open_image(tmp_path / "tagged.png")
    assert asked == [1]


def test_numpy_arrays_are_accepted(reference):
    grey = np.asarray(seven())
    assert similarity(images.preprocess(grey), reference) > 0.999
    assert similarity(images.preprocess(grey.astype(np.float32) / 255), reference) > 0.999
    assert similarity(images.preprocess(np.dstack([grey] * 3)), reference) > 0.999
    with pytest.raises(ImageError):
        images.preprocess(np.zeros((5, 5, 7), np.uint8))


def test_large_photo_is_shrunk_while_decoding(tmp_path, reference):
    page = seven(size=(120, 160), width=12).resize((1200, 1600), Image.BICUBIC)
    photo = Image.new("L", (4000, 3000), 255)
    photo.paste(page, (1400, 700))
    photo.save(tmp_path / "photo.jpg", quality=85)
    opened = images.open_image(tmp_path / "photo.jpg")
    assert max(opened.size) <= 2 * WORK_SIDE
    assert similarity(images.load_image(tmp_path / "photo.jpg").reshape(28, 28), reference) > 0.95


# ---------------------------------------------------------------------------
# Pictures that must be refused, each with one clear message


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but which holds almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("width, height", [(40000, 40000), (9000, 9000)])
def test_decompression_bomb_is_refused_from_the_header(tmp_path, width, height, monkeypatch):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(width, height))

    def no_decoding(self):
        raise AssertionError("the pixels were decoded before the size was checked")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    with pytest.raises(ImageError, match="too many pixels|pixels \\(the limit"):
        images.load_image(bomb)


def test_blank_image(tmp_path):
    Image.new("L", (100, 100), 255).save(tmp_path / "blank.png")
    with pytest.raises(ImageError, match="no ink"):
        images.load_image(tmp_path / "blank.png")


def test_noise_alone_is_blank():
    rng = np.random.default_rng(1)
    noise = np.clip(200 + rng.normal(0, 4, (200, 200)), 0, 255).astype(np.uint8)
    with pytest.raises(ImageError, match="no ink"):
        images.preprocess(noise)


def test_one_pixel_image(tmp_path):
    Image.new("L", (1, 1), 0).save(tmp_path / "dot.png")
    with pytest.raises(ImageError, match="too small"):
        images.load_image(tmp_path / "dot.png")


def test_a_speck_is_not_a_digit():
    page = np.full((200, 200), 255, np.uint8)
    page[100:102, 100:102] = 0
    with pytest.raises(ImageError, match="speck"):
        images.preprocess(page)


def test_truncated_file(tmp_path):
    seven(size=(300, 400)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cannot decode") as caught:
        images.load_image(tmp_path / "cut.png")
    assert str(caught.value).startswith(str(tmp_path / "cut.png"))
    assert "\n" not in str(caught.value)


def test_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(ImageError, match="not an image"):
        images.load_image(tmp_path / "notes.png")


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(ImageError, match="folder"):
        images.load_image(tmp_path)
    with pytest.raises(ImageError, match="no such file"):
        images.load_image(tmp_path / "missing.png")


# ---------------------------------------------------------------------------
# Real MNIST digits survive being drawn on paper


def test_mnist_digits_drawn_on_paper_come_back(real_mnist_dir):
    """Enlarged 6x as dark ink on paper, each digit comes back as its own 28x28 version; digits
    of typical stroke width come back as the MNIST image itself, to within a pixel's shift."""
    from digitnet.data import load_mnist

    digits = load_mnist(real_mnist_dir).test.float_images()[:30].reshape(-1, 28, 28)
    to_original = []
    for digit in digits:
        page = Image.fromarray(((1 - digit) * 230 + 20).astype(np.uint8)).resize((168, 168), Image.BICUBIC)
        paper = Image.new("L", (300, 260), 250)
        paper.paste(page, (90, 40))
        result = images.preprocess(paper)
        assert similarity(result, images.preprocess(digit)) > 0.9
        to_original.append(similarity(result, digit))
    assert np.median(to_original) > 0.95 and np.mean(to_original) > 0.9
