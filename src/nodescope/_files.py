"""Safe outputs: never write over an input, never replace an output unless told to, never leave half a file.

Two rules every command that writes follows:

1. :func:`check_outputs` before anything is written: an output that *is* one of the inputs (the same path, a link to
   it, a hard link) is refused always; an output that already exists is refused unless ``overwrite``; a folder given
   where a file is expected (and the reverse), the same path given for two outputs and an output folder that holds an
   input are refused always.
2. Every file is written to a temporary name in its own folder and renamed into place (:func:`atomic_path`,
   :func:`atomic_write_text`, :func:`atomic_write_csv`; :func:`atomic_folder` for a folder of outputs), so a crash or
   a kill never leaves a truncated file under the final name. A temporary name starts with ``.`` and ends in
   ``.tmp``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from nodescope.errors import OutputExistsError

__all__ = ["atomic_folder", "atomic_path", "atomic_write_csv", "atomic_write_text", "check_outputs", "rebase",
           "same_path"]


def same_path(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name the same file or folder (equal after resolving links, or the same inode).

    Parameters
    ----------
    a, b : str or Path
        Two paths; either may not exist.

    Returns
    -------
    bool
    """
    pa, pb = Path(a), Path(b)
    if pa.resolve() == pb.resolve():
        return True
    try:
        return os.path.samefile(pa, pb)
    except OSError:  # one of them does not exist
        return False


def _inside(path: Path, folder: Path) -> bool:
    """True when ``path`` lies inside ``folder`` (or is it), after resolving links."""
    p, f = path.resolve(), folder.resolve()
    return p == f or f in p.parents


def _check_one(out: Path, ins: list[Path], overwrite: bool, kind: Literal["file", "folder"]) -> None:
    for src in ins:
        if same_path(out, src):
            raise OutputExistsError(f"output {out} is the input {src}; inputs are never overwritten, choose another "
                                    f"{kind}")
        if kind == "folder" and _inside(src, out):
            raise OutputExistsError(f"output folder {out} holds the input {src}; inputs are never overwritten, choose "
                                    "another folder")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputExistsError(f"output {out}: {parent} is a file, not a folder")
    if not out.exists():
        return
    if kind == "file" and out.is_dir():
        raise OutputExistsError(f"output {out} is a folder; expected the path of a file")
    if kind == "folder" and not out.is_dir():
        raise OutputExistsError(f"output folder {out} is a file; expected a folder")
    if overwrite:
        return
    if kind == "file":
        raise OutputExistsError(f"output {out} already exists; refusing to replace it (choose another name or ask "
                                "to overwrite it)")
    if any(out.iterdir()):
        raise OutputExistsError(f"output folder {out} is not empty; refusing to write into it (choose another "
                                "folder or ask to overwrite its files)")


def check_outputs(outputs: Iterable[str | Path | None], inputs: Iterable[str | Path | None], overwrite: bool = False,
                  *, kind: Literal["file", "folder"] = "file") -> list[Path]:
    """Refuse outputs that would replace an input, an existing output (unless ``overwrite``) or each other.

    Parameters
    ----------
    outputs : iterable of path or None
        The files (``kind="file"``) or folders (``kind="folder"``) a command is about to write; None is skipped.
    inputs : iterable of path or None
        Every file or folder the command reads; None is skipped.
    overwrite : bool, default False
        Allow replacing an existing output file, or writing into a non-empty output folder. An output that is an
        input is refused even then.
    kind : {"file", "folder"}, default "file"
        What each output is.

    Returns
    -------
    list of Path
        The outputs (None left out), as given.

    Raises
    ------
    OutputExistsError
        Naming the output and, where one is involved, the input: an output is an input (same path, symbolic or hard
        link), an output folder holds an input, the same output is given twice, a folder is given where a file is
        expected or the reverse, a parent of an output is a file, or an output exists and ``overwrite`` is False.
    """
    outs = [Path(o) for o in outputs if o is not None]
    ins = [Path(i) for i in inputs if i is not None]
    for i, out in enumerate(outs):
        for other in outs[:i]:
            if same_path(out, other):
                raise OutputExistsError(f"output {out} is given for two outputs ({other}); each output needs its "
                                        "own path")
        _check_one(out, ins, overwrite, kind)
    return outs


def _temp_name(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed to ``path`` when the block ends without an error.

    Parameters
    ----------
    path : str or Path
        The final file; its folder is created when missing.

    Yields
    ------
    Path
        ``.<name>.<random>.tmp`` in the same folder (an empty file). On any exception (a signal included) it is
        removed and ``path`` is left as it was.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder (see :func:`atomic_path`).

    Parameters
    ----------
    path : str or Path
    text : str
    encoding : str, default "utf-8"

    Returns
    -------
    Path
        ``path``.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def atomic_write_csv(frame: pd.DataFrame, path: str | Path, **to_csv: Any) -> Path:
    """``frame.to_csv(path, **to_csv)`` through a temporary file in the same folder (see :func:`atomic_path`).

    Parameters
    ----------
    frame : DataFrame
    path : str or Path
    **to_csv
        Passed to :meth:`pandas.DataFrame.to_csv` (``index=False`` unless given).

    Returns
    -------
    Path
        ``path``.
    """
    to_csv.setdefault("index", False)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **to_csv)
    return Path(path)


def _merge(src: Path, dst: Path) -> None:
    """Move the entries of ``src`` into ``dst``: files replace same-named files (renamed, atomic each), folders merge."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if entry.is_dir() and not entry.is_symlink():
            _merge(entry, target)
        else:
            os.replace(entry, target)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``path`` to write a set of outputs into; moved into ``path`` when the block succeeds.

    Parameters
    ----------
    path : str or Path
        The final folder. When it does not exist, the temporary folder is renamed to it (one step); otherwise its
        files are moved in one by one, each replacing a file of the same name (nothing else in ``path`` is removed).

    Yields
    ------
    Path
        ``.<name>.<random>.tmp`` in the parent of ``path``. On any exception it is removed and ``path`` is left as it
        was.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            _merge(tmp, final)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def rebase(value: Any, old: Path, new: Path) -> Any:
    """``value`` with every path under ``old`` moved under ``new`` (dicts and lists walked; other values unchanged).

    Use it on what a writer returned for the temporary folder of :func:`atomic_folder`, to report the final paths.

    Parameters
    ----------
    value : Any
        A path, or a dict/list/tuple holding paths.
    old, new : Path
        The temporary and the final folder.

    Returns
    -------
    Any
        The same structure with the paths rebased.
    """
    if isinstance(value, dict):
        return {k: rebase(v, old, new) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(rebase(v, old, new) for v in value)
    if isinstance(value, Path | str):
        p = Path(value)
        if p == old or old in p.parents:
            moved = new / p.relative_to(old)
            return str(moved) if isinstance(value, str) else moved
    return value
