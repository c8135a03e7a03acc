"""Tests for nodescope.data image reading: DICOM built here with pydicom, raster round trips, errors."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    MPEG4HP41,
    ExplicitVRLittleEndian,
    JPEGLSLossless,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

from nodescope.data import ImageInfo, ImageReadError, image_info, read_image


def write_dicom(
    path: Path,
    pixel_bytes: bytes,
    *,
    rows: int,
    cols: int,
    samples: int = 1,
    frames: int | None = None,
    bits: int = 8,
    photometric: str = "MONOCHROME2",
    planar: int | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
    encapsulated: bool = False,
    **extra: object,
) -> Path:
    """Write an uncompressed (explicit VR little endian) DICOM file from raw pixel bytes."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if samples > 1:
        ds.PlanarConfiguration = 0 if planar is None else planar
    if frames is not None:
        ds.NumberOfFrames = frames
    for key, value in extra.items():
        setattr(ds, key, value)
    ds.PixelData = pixel_bytes
    if encapsulated:
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    elif bits > 8:
        ds["PixelData"].VR = "OW"
    else:
        ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def _le(arr: np.ndarray) -> bytes:
    data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    return data + (b"\x00" if len(data) % 2 else b"")


# ------------------------------------------------------------------------------------------ DICOM grey


@pytest.mark.parametrize("dtype,bits", [(np.uint8, 8), (np.uint16, 16)])
def test_dicom_monochrome2_single_frame(tmp_path: Path, rng: np.random.Generator, dtype, bits) -> None:
    arr = rng.integers(0, np.iinfo(dtype).max, size=(5, 7), dtype=dtype)
    f = write_dicom(tmp_path / "a.dcm", _le(arr), rows=5, cols=7, bits=bits)
    img = read_image(f)
    assert img.pixels.shape == (5, 7, 1)
    assert img.pixels.dtype == dtype
    np.testing.assert_array_equal(img.pixels[..., 0], arr)
    assert img.meta["inverted"] is False and img.meta["frames"] == 1
    info = image_info(f)
    assert info == ImageInfo(
        width=7, height=5, channels=1, frames=1, dtype=np.dtype(dtype).name, format="dicom"
    )


def test_dicom_monochrome1_is_inverted(tmp_path: Path) -> None:
    arr = np.array([[0, 10, 4095], [100, 2000, 4000]], dtype=np.uint16)
    f = write_dicom(tmp_path / "m1.dcm", _le(arr), rows=2, cols=3, bits=16, photometric="MONOCHROME1")
    import pydicom

    ds = pydicom.dcmread(f)
    ds.BitsStored, ds.HighBit = 12, 11  # 12-bit data in 16-bit words: invert against 4095, not 65535
    ds.save_as(f)
    img = read_image(f)
    np.testing.assert_array_equal(img.pixels[..., 0], 4095 - arr)
    assert img.meta["inverted"] is True
    assert img.meta["photometric_interpretation"] == "MONOCHROME1"
    assert img.meta["bits_stored"] == 12


# ------------------------------------------------------------------------------------------ DICOM colour


def test_dicom_rgb_planar_0_and_1_agree(tmp_path: Path, rng: np.random.Generator) -> None:
    rgb = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    f0 = write_dicom(
        tmp_path / "p0.dcm", rgb.tobytes(), rows=4, cols=6, samples=3, photometric="RGB", planar=0
    )
    f1 = write_dicom(
        tmp_path / "p1.dcm",
        rgb.transpose(2, 0, 1).tobytes(),
        rows=4,
        cols=6,
        samples=3,
        photometric="RGB",
        planar=1,
    )
    for f in (f0, f1):
        img = read_image(f)
        assert img.pixels.shape == (4, 6, 3)
        np.testing.assert_array_equal(img.pixels, rgb)


def _ybr_full(rgb: tuple[float, float, float]) -> tuple[int, int, int]:
    # DICOM PS3.3 C.7.6.3.1.2 (YBR_FULL), written out independently of pydicom.
    r, g, b = rgb
    y = 0.2990 * r + 0.5870 * g + 0.1140 * b
    cb = -0.1687 * r - 0.3313 * g + 0.5000 * b + 128
    cr = 0.5000 * r - 0.4187 * g - 0.0813 * b + 128
    return round(y), round(cb), round(cr)


def test_dicom_ybr_full_converted_to_rgb(tmp_path: Path) -> None:
    orange, teal = (200, 100, 50), (20, 160, 150)
    ybr = np.zeros((2, 4, 3), dtype=np.uint8)
    ybr[0], ybr[1] = _ybr_full(orange), _ybr_full(teal)
    f = write_dicom(tmp_path / "ybr.dcm", ybr.tobytes(), rows=2, cols=4, samples=3, photometric="YBR_FULL")
    img = read_image(f)
    assert img.meta["converted_to_rgb"] is True
    assert img.meta["photometric_interpretation"] == "YBR_FULL"
    np.testing.assert_allclose(img.pixels[0].astype(int), np.tile(orange, (4, 1)), atol=2)
    np.testing.assert_allclose(img.pixels[1].astype(int), np.tile(teal, (4, 1)), atol=2)


def test_dicom_ybr_full_422_converted_to_rgb(tmp_path: Path) -> None:
    # 4:2:2 native encoding: each pair of pixels is stored as Y1 Y2 Cb Cr (PS3.3 C.7.6.3.1.2).
    colour = (60, 180, 90)
    y, cb, cr = _ybr_full(colour)
    rows, cols = 2, 4
    data = bytes([y, y, cb, cr] * (rows * cols // 2))
    f = write_dicom(tmp_path / "422.dcm", data, rows=rows, cols=cols, samples=3, photometric="YBR_FULL_422")
    img = read_image(f)
    assert img.pixels.shape == (2, 4, 3)
    np.testing.assert_allclose(img.pixels.reshape(-1, 3).astype(int), np.tile(colour, (8, 1)), atol=2)


# ------------------------------------------------------------------------------------------ DICOM cine


def test_three_frame_grey_cine_is_not_one_rgb_image(tmp_path: Path) -> None:
    # Same bytes, same pixel count: 3 grey frames of 4x5 vs one RGB 4x5 image (MONAI issue #8265).
    frames = np.stack([np.full((4, 5), v, dtype=np.uint8) for v in (10, 20, 30)])
    cine = write_dicom(tmp_path / "cine.dcm", frames.tobytes(), rows=4, cols=5, frames=3)
    rgb = np.stack([np.full((4, 5), v, dtype=np.uint8) for v in (10, 20, 30)], axis=-1)
    still = write_dicom(
        tmp_path / "rgb.dcm", rgb.tobytes(), rows=4, cols=5, samples=3, photometric="RGB", frames=1
    )

    all_frames = read_image(cine, frame="all").pixels
    assert all_frames.shape == (3, 4, 5, 1)
    np.testing.assert_array_equal(all_frames[:, 0, 0, 0], [10, 20, 30])
    assert read_image(cine, frame=2).pixels.shape == (4, 5, 1)
    assert int(read_image(cine, frame=2).pixels[0, 0, 0]) == 30
    assert read_image(cine).meta["frames"] == 3

    single = read_image(still)
    assert single.pixels.shape == (4, 5, 3)
    np.testing.assert_array_equal(single.pixels[0, 0], [10, 20, 30])
    assert read_image(still, frame="all").pixels.shape == (1, 4, 5, 3)
    assert image_info(cine).frames == 3 and image_info(cine).channels == 1
    assert image_info(still).frames == 1 and image_info(still).channels == 3


def test_multiframe_rgb_cine_frame_axis_first(tmp_path: Path, rng: np.random.Generator) -> None:
    clip = rng.integers(0, 256, size=(4, 3, 5, 3), dtype=np.uint8)  # 4 frames, 3 rows (== samples), 5 cols
    f = write_dicom(
        tmp_path / "rgbcine.dcm", clip.tobytes(), rows=3, cols=5, samples=3, photometric="RGB", frames=4
    )
    out = read_image(f, frame="all")
    assert out.pixels.shape == (4, 3, 5, 3)
    np.testing.assert_array_equal(out.pixels, clip)
    np.testing.assert_array_equal(read_image(f, frame=3).pixels, clip[3])
    np.testing.assert_array_equal(read_image(f).pixels, clip[0])
    # planar configuration 1 per frame: RRR..GGG..BBB.. for each frame in turn
    planar = b"".join(fr.transpose(2, 0, 1).tobytes() for fr in clip)
    f1 = write_dicom(
        tmp_path / "planar1.dcm", planar, rows=3, cols=5, samples=3, photometric="RGB", frames=4, planar=1
    )
    np.testing.assert_array_equal(read_image(f1, frame="all").pixels, clip)


@pytest.mark.parametrize("bad", [4, 10, -1])
def test_frame_out_of_range_names_file_and_count(tmp_path: Path, bad: int) -> None:
    f = write_dicom(tmp_path / "c.dcm", bytes(4 * 2 * 2), rows=2, cols=2, frames=4)
    with pytest.raises(ImageReadError, match=r"c\.dcm.*has 4 frame"):
        read_image(f, frame=bad)


def test_frame_type_error(tmp_path: Path) -> None:
    f = write_dicom(tmp_path / "c.dcm", bytes(4), rows=2, cols=2)
    with pytest.raises(TypeError, match="frame"):
        read_image(f, frame="first")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ DICOM spacing


def test_spacing_from_pixel_spacing(tmp_path: Path) -> None:
    f = write_dicom(tmp_path / "s.dcm", bytes(6), rows=2, cols=3, PixelSpacing=[0.2, 0.25])
    assert read_image(f).spacing == (0.2, 0.25)
    assert read_image(f).meta["spacing_source"] == "PixelSpacing"
    assert image_info(f).spacing == (0.2, 0.25)


def _region(dx: float, dy: float, x1: int, y1: int, spatial: int = 1, units: int = 3) -> Dataset:
    r = Dataset()
    r.RegionSpatialFormat = spatial
    r.RegionDataType = 1
    r.RegionFlags = 0
    r.RegionLocationMinX0, r.RegionLocationMinY0 = 0, 0
    r.RegionLocationMaxX1, r.RegionLocationMaxY1 = x1, y1
    r.PhysicalUnitsXDirection = units
    r.PhysicalUnitsYDirection = units
    r.PhysicalDeltaX = dx
    r.PhysicalDeltaY = dy
    return r


def test_spacing_from_ultrasound_regions_cm_to_mm(tmp_path: Path) -> None:
    regions = Sequence(
        [
            _region(0.5, 0.9, x1=3, y1=3, spatial=3, units=4),  # spectral Doppler (seconds): ignored
            _region(0.008, 0.009, x1=2, y1=1),  # small 2D region
            _region(0.01, 0.012, x1=99, y1=79),  # largest 2D tissue region wins
        ]
    )
    f = write_dicom(tmp_path / "us.dcm", bytes(6), rows=2, cols=3, SequenceOfUltrasoundRegions=regions)
    img = read_image(f)
    assert img.spacing == pytest.approx((0.12, 0.1))  # (row = DeltaY, col = DeltaX), cm -> mm
    assert img.meta["spacing_source"] == "SequenceOfUltrasoundRegions"
    assert image_info(f).spacing == pytest.approx((0.12, 0.1))
    f2 = write_dicom(tmp_path / "none.dcm", bytes(6), rows=2, cols=3)
    assert read_image(f2).spacing is None


# ------------------------------------------------------------------------------------------ DICOM errors


def test_compressed_syntax_without_plugin_is_named(tmp_path: Path) -> None:
    from pydicom.encaps import encapsulate
    from pydicom.pixels import get_decoder

    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS plugin is installed here")
    f = write_dicom(
        tmp_path / "jls.dcm",
        encapsulate([b"\xff\xd8\xff\xd9"]),
        rows=2,
        cols=2,
        transfer_syntax=JPEGLSLossless,
        encapsulated=True,
    )
    with pytest.raises(ImageReadError, match=r"jls\.dcm.*JPEG-LS Lossless.*not installed"):
        read_image(f)
    assert image_info(f).width == 2  # the header is still readable


def test_video_syntax_has_no_decoder(tmp_path: Path) -> None:
    from pydicom.encaps import encapsulate

    f = write_dicom(
        tmp_path / "mp4.dcm",
        encapsulate([b"\x00\x00\x00\x01"]),
        rows=2,
        cols=2,
        transfer_syntax=MPEG4HP41,
        encapsulated=True,
    )
    with pytest.raises(ImageReadError, match=r"mp4\.dcm.*MPEG-4 AVC/H\.264.*cannot be decoded"):
        read_image(f)


def test_truncated_pixel_data(tmp_path: Path) -> None:
    f = write_dicom(tmp_path / "short.dcm", bytes(4), rows=4, cols=4)
    with pytest.raises(ImageReadError, match=r"short\.dcm"):
        read_image(f)


# ------------------------------------------------------------------------------------------ raster formats


@pytest.mark.parametrize(
    "suffix,mode,dtype,channels",
    [
        (".png", "L", np.uint8, 1),
        (".png", "RGB", np.uint8, 3),
        (".png", "I;16", np.uint16, 1),
        (".bmp", "L", np.uint8, 1),
        (".bmp", "RGB", np.uint8, 3),
        (".tif", "L", np.uint8, 1),
        (".tif", "RGB", np.uint8, 3),
        (".tif", "I;16", np.uint16, 1),
        (".tif", "RGB16", np.uint16, 3),
    ],
)
def test_lossless_round_trip(tmp_path: Path, rng: np.random.Generator, suffix, mode, dtype, channels) -> None:
    shape = (9, 11, channels)
    arr = rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)
    f = tmp_path / f"img{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(
            f, arr if channels == 3 else arr[..., 0], photometric="rgb" if channels == 3 else "minisblack"
        )
    else:
        Image.fromarray(arr if channels == 3 else arr[..., 0]).save(f)
    img = read_image(f)
    assert img.pixels.dtype == dtype
    assert img.pixels.shape == shape
    np.testing.assert_array_equal(img.pixels, arr)
    info = image_info(f)
    assert (info.height, info.width, info.channels, info.frames, info.dtype) == (
        9,
        11,
        channels,
        1,
        np.dtype(dtype).name,
    )


def test_tiff_planar_rgb16_and_multipage(tmp_path: Path, rng: np.random.Generator) -> None:
    arr = rng.integers(0, 65535, size=(6, 5, 3), dtype=np.uint16)
    f = tmp_path / "planar.tif"
    tifffile.imwrite(f, arr.transpose(2, 0, 1), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(f).pixels, arr)
    stack = rng.integers(0, 255, size=(3, 6, 5), dtype=np.uint8)
    g = tmp_path / "stack.tif"
    tifffile.imwrite(g, stack, photometric="minisblack")
    assert image_info(g).frames == 3 and image_info(g).channels == 1
    np.testing.assert_array_equal(read_image(g, frame="all").pixels[..., 0], stack)
    np.testing.assert_array_equal(read_image(g, frame=1).pixels[..., 0], stack[1])
    with pytest.raises(ImageReadError, match=r"stack\.tif.*3 frame"):
        read_image(g, frame=3)


def test_jpeg_round_trip_is_close(tmp_path: Path) -> None:
    arr = np.zeros((16, 16, 3), dtype=np.uint8)
    arr[:, :8] = (200, 30, 30)
    f = tmp_path / "x.jpg"
    Image.fromarray(arr).save(f, quality=95)
    img = read_image(f)
    assert img.pixels.shape == (16, 16, 3) and img.meta["format"] == "jpeg"
    assert np.abs(img.pixels[4, 2].astype(int) - (200, 30, 30)).max() < 12
    g = tmp_path / "g.jpeg"
    Image.fromarray(arr[..., 0]).save(g)
    assert read_image(g).pixels.shape == (16, 16, 1)


def test_alpha_and_palette_become_rgb(tmp_path: Path) -> None:
    rgba = np.zeros((3, 4, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 90, 128
    f = tmp_path / "a.png"
    Image.fromarray(rgba).save(f)
    img = read_image(f)
    assert img.pixels.shape == (3, 4, 3) and img.meta["mode"] == "RGBA->RGB"
    assert (img.pixels[..., 0] == 90).all()
    p = tmp_path / "p.png"
    Image.fromarray(rgba[..., :3]).convert("P").save(p)
    assert read_image(p).pixels.shape == (3, 4, 3)
    assert image_info(p).channels == 3


def _png_rgb16(path: Path, arr: np.ndarray) -> None:
    """Minimal 16-bit RGB PNG writer (filter 0), because Pillow cannot write one."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[r].astype(">u2").tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def test_16bit_colour_png_is_refused_not_truncated(tmp_path: Path) -> None:
    f = tmp_path / "rgb16.png"
    _png_rgb16(f, np.full((2, 3, 3), 40000, dtype=np.uint16))
    with Image.open(f) as im:
        assert im.mode == "RGB"  # what Pillow would silently do: 8 bits
    with pytest.raises(ImageReadError, match=r"rgb16\.png.*16-bit colour PNG"):
        read_image(f)


# ------------------------------------------------------------------------------------------ file errors


def test_missing_file_named(tmp_path: Path) -> None:
    f = tmp_path / "nope.png"
    with pytest.raises(ImageReadError, match=r"nope\.png: file not found"):
        read_image(f)
    with pytest.raises(ImageReadError, match=r"nope\.png: file not found"):
        image_info(f)


@pytest.mark.parametrize("name,content", [("bad.png", b"not an image at all"), ("bad.dcm", b"garbage" * 30)])
def test_corrupt_file_named(tmp_path: Path, name: str, content: bytes) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(ImageReadError, match=name.replace(".", r"\.")):
        read_image(f)


def test_truncated_png_named(tmp_path: Path, rng: np.random.Generator) -> None:
    f = tmp_path / "trunc.png"
    Image.fromarray(rng.integers(0, 255, size=(64, 64), dtype=np.uint8)).save(f)
    f.write_bytes(f.read_bytes()[:200])
    with pytest.raises(ImageReadError, match=r"trunc\.png: cannot decode PNG"):
        read_image(f)


def test_unknown_format_named(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(ImageReadError, match=r"notes\.txt: unsupported image format"):
        read_image(f)


def test_image_read_error_is_value_error() -> None:
    assert issubclass(ImageReadError, ValueError)


# ------------------------------------------------------------------------------------------ real data


@pytest.mark.shared_data
def test_busi_sizes_match_labels(shared_data: Path) -> None:
    busi = shared_data / "busi"
    labels = pd.read_csv(busi / "labels.csv", dtype=str)
    rows = pd.concat([labels[labels.color_pixels == "0"].head(3), labels[labels.color_pixels == "1"].head(2)])
    for _, row in rows.iterrows():
        img = read_image(busi / row["image"])
        assert (img.width, img.height) == (int(row["width"]), int(row["height"])), row["image"]
        assert img.channels == (3 if row["color_pixels"] == "1" else 1)
        info = image_info(busi / row["image"])
        assert (info.width, info.height) == (img.width, img.height)


def test_jpeg_baseline_dicom_ybr_full_422_not_converted_twice(tmp_path: Path) -> None:
    # Ultrasound exports are often JPEG baseline with YBR_FULL_422; the JPEG codec already returns RGB, so the
    # colour must come back as stored, not converted a second time.
    import io

    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    colour = (200, 100, 50)
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[:] = colour
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
    f = write_dicom(
        tmp_path / "jpg.dcm",
        encapsulate([buf.getvalue()]),
        rows=16,
        cols=16,
        samples=3,
        photometric="YBR_FULL_422",
        transfer_syntax=JPEGBaseline8Bit,
        encapsulated=True,
    )
    img = read_image(f)
    assert img.pixels.shape == (16, 16, 3)
    np.testing.assert_allclose(img.pixels[8, 8].astype(int), colour, atol=4)


def test_signed_dicom(tmp_path: Path) -> None:
    import pydicom

    arr = np.array([[0, 5], [300, 1000]], dtype=np.int16)
    f = write_dicom(tmp_path / "signed.dcm", _le(arr), rows=2, cols=2, bits=16)
    ds = pydicom.dcmread(f)
    ds.PixelRepresentation = 1
    ds.save_as(f)
    out = read_image(f).pixels
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out[..., 0], arr)  # non-negative: cast without change
    ds.PixelData = _le(np.array([[-1000, 5], [300, 1000]], dtype=np.int16))
    ds.save_as(f)
    with pytest.raises(ImageReadError, match=r"signed\.dcm: signed pixel data with negative values"):
        read_image(f)


# --------------------------------------------------------------------------------------------------- in memory


def _files_of_each_format(tmp_path: Path, rng: np.random.Generator) -> list[Path]:
    grey = rng.integers(0, 256, (12, 9), dtype=np.uint8)
    rgb = rng.integers(0, 256, (12, 9, 3), dtype=np.uint8)
    files = []
    for name, arr in (("g.png", grey), ("c.png", rgb), ("c.jpg", rgb), ("g.bmp", grey)):
        Image.fromarray(arr).save(tmp_path / name)
        files.append(tmp_path / name)
    tifffile.imwrite(tmp_path / "g16.tif", rng.integers(0, 65536, (3, 12, 9), dtype=np.uint16), photometric="minisblack")
    files.append(tmp_path / "g16.tif")
    write_dicom(tmp_path / "x.dcm", _le(rng.integers(0, 65535, (12, 9), dtype=np.uint16)), rows=12, cols=9, bits=16,
                PixelSpacing=[0.1, 0.2])
    files.append(tmp_path / "x.dcm")
    return files


def test_bytes_and_file_objects_equal_paths(tmp_path: Path, rng: np.random.Generator) -> None:
    for f in _files_of_each_format(tmp_path, rng):
        ref = read_image(f)
        data = f.read_bytes()
        for src in (data, bytearray(data), memoryview(data)):
            got = read_image(src, name=f.name)
            np.testing.assert_array_equal(got.pixels, ref.pixels)
            assert got.meta == ref.meta and got.spacing == ref.spacing and got.path.name == f.name
        with f.open("rb") as fh:  # an upload's file object: named after the file it holds
            got = read_image(fh)
        np.testing.assert_array_equal(got.pixels, ref.pixels)
        assert str(got.path) == str(f)
        assert image_info(data, name=f.name) == image_info(f)
    # frames of a multi-page file from memory
    tif = tmp_path / "g16.tif"
    np.testing.assert_array_equal(read_image(tif.read_bytes(), frame="all").pixels, read_image(tif, frame="all").pixels)


@pytest.mark.parametrize("content,expect", [(b"", "empty"), (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "upload.png"),
                                            (b"hello world" * 20, "unsupported image format")])
def test_bad_bytes_named_like_files(content: bytes, expect: str) -> None:
    with pytest.raises(ImageReadError, match=expect) as info:
        read_image(content, name="upload.png" if expect != "unsupported image format" else "upload.bin")
    assert "upload" in str(info.value)


def test_text_mode_file_object_refused(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("abc")
    with f.open("r") as fh, pytest.raises(TypeError, match="binary mode"):
        read_image(fh)  # type: ignore[arg-type]
