"""The files of a pack: paths that stay inside its folder, and the three kinds allowed.

A pack is a folder; every path it writes is relative to that folder and must stay
inside it: no absolute paths, no ``..``, no symbolic link that leads out. A pack holds
only TOML files, PNG images and safetensors weights, so playing one never runs code
from it. Each check raises ``EngineError`` with what is wrong (the caller adds the
file, line and key where the path was written).

This module knows the file kinds, not what the pack does with them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath

from neural_engine.errors import EngineError

PACK_FILE = "pack.toml"
SUFFIXES = {".toml": "a TOML file", ".png": "a PNG image", ".safetensors": "safetensors weights"}
MAX_BYTES = {".toml": 1 << 20, ".png": 16 << 20, ".safetensors": 256 << 20}
MAX_FILES = 1000


class PackFolder:
    """A pack's folder, resolved once; ``file()`` turns a written path into a safe one."""

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        try:
            if not path.exists():
                raise FileNotFoundError(path)
            if path.is_dir():
                self.folder, self.toml = path, path / PACK_FILE
            elif path.name == PACK_FILE or path.suffix == ".toml":
                self.folder, self.toml = path.parent, path
            else:
                raise EngineError("not a pack: give its folder or its pack.toml",
                                  where=str(path))
            self.real = self.folder.resolve(strict=True)
        except FileNotFoundError:
            raise EngineError("no such pack folder", where=str(path)) from None
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot open the pack: {exc}", where=str(path)) from None
        if not self.toml.exists():
            raise EngineError(f"no {PACK_FILE} in this folder", where=str(self.folder))
        self.toml = self.check_inside(self.toml, ".toml")

    def file(self, written: str, suffix: str) -> Path:
        """The file a pack path names, if it is safe, of the right kind and present."""
        if not written:
            raise EngineError("empty path")
        if "\x00" in written or not written.isprintable():
            raise EngineError(f"path {written!r} holds control characters")
        posix, windows = PurePosixPath(written), PureWindowsPath(written)
        if posix.is_absolute() or windows.is_absolute() or windows.drive:
            raise EngineError(f"path {written!r} is absolute: write it relative to the pack "
                              "folder")
        if "\\" in written:
            raise EngineError(f"path {written!r}: separate folders with '/'")
        if ".." in posix.parts:
            raise EngineError(f"path {written!r} leaves the pack folder ('..')")
        if posix.suffix.lower() != suffix:
            raise EngineError(f"path {written!r} must name {SUFFIXES[suffix]} ({suffix})")
        return self.check_inside(self.folder / posix, suffix)

    def check_inside(self, path: Path, suffix: str) -> Path:
        """``path`` resolved (links followed): inside the pack, a regular file, not too big."""
        try:
            real = path.resolve(strict=True)
            info = real.stat()
        except FileNotFoundError:
            raise EngineError(f"file not found: {self._shown(path)}") from None
        except (OSError, RuntimeError, ValueError) as exc:   # link loops, names too long
            raise EngineError(f"cannot open {self._shown(path)}: {exc}") from None
        if not real.is_relative_to(self.real):
            raise EngineError(f"{self._shown(path)} is a link that leaves the pack folder")
        if not stat.S_ISREG(info.st_mode):
            raise EngineError(f"{self._shown(path)} is not a regular file")
        if real.suffix.lower() != suffix:
            raise EngineError(f"{self._shown(path)} links to a file that is not "
                              f"{SUFFIXES[suffix]}")
        if info.st_size > MAX_BYTES[suffix]:
            raise EngineError(f"{self._shown(path)} is larger than "
                              f"{MAX_BYTES[suffix] >> 20} MiB")
        return real

    def stray_files(self) -> list[str]:
        """Problems with what lies in the folder: other kinds of file, links out."""
        problems = []
        count = 0
        for root, dirs, files in os.walk(self.folder, followlinks=False):
            for name in sorted(dirs + files):
                count += 1
                if count > MAX_FILES:
                    return problems + [f"{self.folder}: more than {MAX_FILES} files"]
                path = Path(root) / name
                try:
                    if path.is_symlink():
                        target = path.resolve()
                        if not target.is_relative_to(self.real):
                            problems.append(f"{path}: a link that leaves the pack folder")
                            continue
                    if name in dirs or path.is_dir():
                        continue
                    suffix = path.resolve().suffix.lower()
                except (OSError, RuntimeError, ValueError) as exc:
                    problems.append(f"{path}: cannot be read ({exc})")
                    continue
                if suffix not in SUFFIXES or path.suffix.lower() != suffix:
                    problems.append(f"{path}: a pack holds only TOML files, PNG images and "
                                    "safetensors weights")
        return problems

    def _shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.folder))
        except ValueError:
            return str(path)


def read_text(path: Path) -> str:
    """A TOML file's text (already checked by ``PackFolder``)."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EngineError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                          where=str(path)) from None
    except OSError as exc:
        raise EngineError(f"cannot read: {exc.strerror}", where=str(path)) from None
