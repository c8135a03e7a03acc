"""Batch mode: a folder's files or a zip of images -> a predictions CSV (one row per file, its error if refused).

The CSV is the predictions contract of ``nodescope predict`` (:func:`nodescope.evaluation.make_predictions`:
``patient_id`` = the file's path in the folder or zip, empty ``y_true``, ``p_<class>``, ``split`` = ``test``,
``fold`` = -1, ``model``, ``run_id``) plus ``image``, ``y_pred``, ``threshold`` and ``error`` (empty when the file
was scored; the probabilities are empty otherwise). Zips are read in memory with limits on the number of members and
on each member's declared and actual size (zip bombs stop at the limit).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Sequence

import numpy as np

from nodescope.serve._service import ServedModel, decide
from nodescope.serve._uploads import UploadRejected, decode_upload

__all__ = ["iter_zip", "run_batch"]


def iter_zip(data: bytes, *, max_files: int, max_member_bytes: int) -> Iterator[tuple[str, bytes | None, str]]:
    """``(name, content or None, error)`` for each file member of a zip held in memory.

    Raises
    ------
    UploadRejected
        422 when ``data`` is not a readable zip, 413 when it holds more than ``max_files`` files.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        members = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise UploadRejected(422, f"upload 'archive': not a readable zip file ({exc})") from None
    members = [i for i in members if not i.filename.startswith("__MACOSX/")]
    if len(members) > max_files:
        raise UploadRejected(413, f"upload 'archive': {len(members)} files exceed this server's batch limit of "
                                  f"{max_files}")
    for info in members:
        if info.file_size > max_member_bytes:
            yield info.filename, None, f"larger than {max_member_bytes:,} bytes uncompressed"
            continue
        try:
            with zf.open(info) as fh:
                content = fh.read(max_member_bytes + 1)
        except (zipfile.BadZipFile, RuntimeError, OSError, ValueError, EOFError, NotImplementedError) as exc:
            yield info.filename, None, f"cannot be read from the zip ({type(exc).__name__}: {exc})"
            continue
        if len(content) > max_member_bytes:
            yield info.filename, None, f"larger than {max_member_bytes:,} bytes uncompressed"
        else:
            yield info.filename, content, ""


def run_batch(model: ServedModel, files: Sequence[tuple[str, bytes | None, str]], *, max_pixels: int) -> str:
    """Score single images with ``model`` and return the CSV text (see the module docstring)."""
    import pandas as pd

    from nodescope.evaluation import make_predictions

    k = len(model.classes)
    probs = np.full((len(files), k), np.nan)
    errors, preds = [], []
    for i, (_name, content, err) in enumerate(files):
        pred = ""
        if content is not None and not err:
            try:
                up = decode_upload(content, f"file {i + 1}", max_pixels=max_pixels)
                masks = {model.fields[0]: None}
                probs[i] = model.predict({model.fields[0]: up.image}, masks)[0]
                pred = decide(probs[i], model.classes, model.positive_class, model.threshold)[0]
            except UploadRejected as exc:
                err = exc.reason.split(": ", 1)[-1]
            except ValueError as exc:
                err = f"cannot be prepared for the model ({exc})"
        errors.append(err)
        preds.append(pred)
    names = [n for n, _, _ in files]
    run_id = str(model.bundle.meta.run_id or "") if model.bundle is not None else ""
    frame = make_predictions(names, [""] * len(files), probs, model.classes, split="test", fold=-1, model=model.id,
                             run_id=run_id, extra=pd.DataFrame({"image": names, "y_pred": preds,
                                                                "threshold": model.threshold, "error": errors}))
    return frame.to_csv(index=False)
