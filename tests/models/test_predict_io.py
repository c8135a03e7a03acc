"""predict_files input handling: folders, manifests with other grouping/modalities, 16-bit pixels."""

from __future__ import annotations

from pathlib import Path

from nodescope.data import IMAGE_SUFFIXES
from nodescope.models._predict_io import _collect


def test_folder_scan_uses_the_data_suffix_list(tmp_path: Path) -> None:
    # every suffix read_image decodes is found in a folder (".dicom"/".dic" were missing from predict's own list)
    for i, suf in enumerate(IMAGE_SUFFIXES):
        (tmp_path / f"x{i}{suf}").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    _, paths, _ = _collect([tmp_path])
    assert sorted(p.suffix for p in paths) == sorted(IMAGE_SUFFIXES)
    assert {".dcm", ".dicom", ".dic", ".png", ".tiff"} <= set(IMAGE_SUFFIXES)
