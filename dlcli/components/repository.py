"""The git commit a folder's code is at, and whether its tracked files differ from that commit, read
from the `.git` files themselves: no `git` process, so provenance costs a few file reads per process.

The commit comes from HEAD, the loose refs and packed-refs (worktrees and submodules, whose `.git` is a
file, included). The dirty flag is what `git describe --dirty` means — a tracked file changed, staged
or not; untracked files do not count — found the way `git status` finds it, without running it:

- the working tree against the index: a tracked file whose size, mtime or executable bit differs from
  the index's record of it (or whose mtime is too recent to trust) is hashed as a blob and compared
  with the index's hash; a missing file, a merge conflict or an intent-to-add entry is dirty;
- the index against HEAD: the index's cache tree (its TREE extension) says whether anything was staged
  since the index last matched a tree (a commit, checkout, reset or stash writes it whole; `git add`
  invalidates it), and that tree is compared with HEAD's when HEAD's commit object is loose.

Approximations, all towards "dirty": after something was staged and then unstaged, the flag stays
dirty until the next commit or checkout; a file changed only by a clean filter (Git LFS, autocrlf)
counts as changed once its mtime moved. What cannot be read (a split index, reftable refs, a missing
commit) gives `dirty: None`, or no commit.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import stat
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

GITLINK, SYMLINK = 0o160000, 0o120000
ASSUME_VALID, EXTENDED = 0x8000, 0x4000  # entry flags
SKIP_WORKTREE, INTENT_TO_ADD = 0x4000, 0x2000  # extended entry flags


@dataclass(frozen=True)
class Repository:
    root: Path  # the working tree
    git_dir: Path  # HEAD and the index (a worktree's own folder for a linked worktree)
    common_dir: Path  # refs, packed-refs, objects, config

    @property
    def hash_name(self) -> str:
        config = _read_text(self.common_dir / "config") or ""
        return "sha256" if re.search(r"objectformat\s*=\s*sha256", config, re.I) else "sha1"


@dataclass(frozen=True)
class IndexEntry:
    path: bytes
    mode: int
    size: int
    mtime: tuple[int, int]  # seconds, nanoseconds
    object_id: bytes
    stage: int
    skip: bool  # assume-valid or skip-worktree: git itself does not look at the file
    intent_to_add: bool


def repository_state(folder: str | Path) -> dict[str, Any]:
    """{"root", "commit", "branch", "dirty"} of the git repository holding `folder`, or {} when none:
    read once per repository and process (`read_state` reads it again)."""
    repository = find_repository(Path(folder))
    return dict(_remembered_state(repository)) if repository is not None else {}


@functools.lru_cache(maxsize=None)
def _remembered_state(repository: Repository) -> tuple[tuple[str, Any], ...]:
    return tuple(read_state(repository).items())


def read_state(repository: Repository) -> dict[str, Any]:
    """The repository's root, HEAD's commit and branch, and whether a tracked file differs from it, now."""
    commit, branch = head_commit(repository)
    return {"root": str(repository.root), "commit": commit, "branch": branch,
            "dirty": is_dirty(repository, commit) if commit else None}


def find_repository(folder: Path) -> Repository | None:
    """The repository whose working tree holds `folder` (or a file in it), found by walking up to `.git`."""
    folder = folder.resolve()
    for candidate in (folder, *folder.parents):
        dot_git = candidate / ".git"
        if dot_git.is_dir():
            git_dir = dot_git
        elif dot_git.is_file():  # a linked worktree or a submodule: `gitdir: <path>`
            found = re.match(r"gitdir:\s*(.+)", _read_text(dot_git) or "")
            if not found:
                return None
            git_dir = (candidate / found.group(1).strip()).resolve()
        else:
            continue
        common = _read_text(git_dir / "commondir")
        common_dir = (git_dir / common.strip()).resolve() if common else git_dir
        return Repository(candidate, git_dir, common_dir)
    return None


def head_commit(repository: Repository) -> tuple[str | None, str | None]:
    """HEAD's commit (None before the first commit) and its branch (None when detached)."""
    head = (_read_text(repository.git_dir / "HEAD") or "").strip()
    if not head.startswith("ref:"):
        return (head or None), None
    ref = head[4:].strip()
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    return resolve_ref(repository, ref), branch


def resolve_ref(repository: Repository, ref: str, depth: int = 0) -> str | None:
    """A ref's commit: its loose file (in the worktree's folder, then the common one), else packed-refs."""
    for folder in (repository.git_dir, repository.common_dir):
        value = (_read_text(folder / ref) or "").strip()
        if value.startswith("ref:") and depth < 5:
            return resolve_ref(repository, value[4:].strip(), depth + 1)
        if value:
            return value
    for line in (_read_text(repository.common_dir / "packed-refs") or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == ref and not line.startswith(("#", "^")):
            return parts[0]
    return None


def is_dirty(repository: Repository, commit: str) -> bool | None:
    """Whether a tracked file differs from `commit` (the module's docstring says how); None if unknown."""
    try:
        data = (repository.git_dir / "index").read_bytes()
    except FileNotFoundError:
        return False  # nothing tracked yet is staged or changed
    try:
        entries, extensions = read_index(data, hashlib.new(repository.hash_name).digest_size)
    except (ValueError, struct.error):
        return None
    if b"link" in extensions:
        return None  # a split index: the entries are spread over two files
    index_mtime = os.stat(repository.git_dir / "index").st_mtime_ns
    if any(_entry_changed(repository, entry, index_mtime) for entry in entries):
        return True
    return _staged_changes(repository, extensions.get(b"TREE"), commit)


def read_index(data: bytes, hash_size: int) -> tuple[list[IndexEntry], dict[bytes, bytes]]:
    """The entries and extensions of a git index file (versions 2, 3 and 4)."""
    signature, version, count = struct.unpack_from(">4sLL", data)
    if signature != b"DIRC" or version not in (2, 3, 4):
        raise ValueError(f"not a git index (version {version})")
    entries, offset = [], 12
    for entry, offset in _index_entries(data, version, count, hash_size):
        entries.append(entry)
    extensions = {}
    while offset + 8 <= len(data) - hash_size:
        name, size = struct.unpack_from(">4sL", data, offset)
        extensions[name] = data[offset + 8:offset + 8 + size]
        offset += 8 + size
    return entries, extensions


def _index_entries(data: bytes, version: int, count: int, hash_size: int) -> Iterator[tuple[IndexEntry, int]]:
    offset, previous = 12, b""
    for _ in range(count):
        _, _, mtime_s, mtime_ns, _, _, mode, _, _, size = struct.unpack_from(">10L", data, offset)
        object_id = data[offset + 40:offset + 40 + hash_size]
        (flags,) = struct.unpack_from(">H", data, offset + 40 + hash_size)
        position, extended = offset + 42 + hash_size, 0
        if flags & EXTENDED and version >= 3:
            (extended,) = struct.unpack_from(">H", data, position)
            position += 2
        if version == 4:  # the path is the previous one, less `strip` bytes, plus a suffix
            strip, position = _varint(data, position)
            end = data.index(b"\0", position)
            path, next_offset = previous[:len(previous) - strip] + data[position:end], end + 1
        else:  # padded with 1 to 8 NUL bytes to a multiple of 8
            end = data.index(b"\0", position)
            path, next_offset = data[position:end], offset + (end - offset + 8) // 8 * 8
        yield IndexEntry(path, mode, size, (mtime_s, mtime_ns), object_id, (flags >> 12) & 3,
                         bool(flags & ASSUME_VALID or extended & SKIP_WORKTREE),
                         bool(extended & INTENT_TO_ADD)), next_offset
        offset, previous = next_offset, path


def _varint(data: bytes, position: int) -> tuple[int, int]:
    """git's offset varint (varint.c): big-endian 7-bit groups, each continuation adding one."""
    byte = data[position]
    value, position = byte & 127, position + 1
    while byte & 128:
        byte = data[position]
        value, position = ((value + 1) << 7) | (byte & 127), position + 1
    return value, position


def _entry_changed(repository: Repository, entry: IndexEntry, index_mtime_ns: int) -> bool:
    if entry.stage or entry.intent_to_add:
        return True  # a merge conflict, or a file to be added
    if entry.skip or stat.S_IFMT(entry.mode) not in (stat.S_IFREG, SYMLINK):
        return False  # submodules and sparse folders are not this repository's files
    path = repository.root / os.fsdecode(entry.path)
    try:
        status = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    if stat.S_IFMT(status.st_mode) != stat.S_IFMT(entry.mode):
        return True
    if stat.S_ISREG(entry.mode) and bool(status.st_mode & 0o100) != bool(entry.mode & 0o100):
        return True
    if status.st_size & 0xFFFFFFFF != entry.size:
        return True
    mtime_s, mtime_ns = divmod(status.st_mtime_ns, 10**9)
    same_time = mtime_s == entry.mtime[0] and (entry.mtime[1] == 0 or mtime_ns == entry.mtime[1])
    if same_time and status.st_mtime_ns < index_mtime_ns:
        return False  # stat data as the index recorded it, and written before the index: unchanged
    content = os.fsencode(os.readlink(path)) if stat.S_ISLNK(status.st_mode) else path.read_bytes()
    blob = hashlib.new(repository.hash_name, b"blob %d\0" % len(content) + content).digest()
    return blob != entry.object_id


def _staged_changes(repository: Repository, cache_tree: bytes | None, commit: str) -> bool:
    """Whether the index's tree differs from HEAD's: unknown (so dirty) when `git add` invalidated it."""
    if cache_tree is None:
        return True
    header_end = cache_tree.index(b"\n")
    entry_count = int(cache_tree[cache_tree.index(b"\0") + 1:header_end].split()[0])
    if entry_count < 0:
        return True
    size = hashlib.new(repository.hash_name).digest_size
    index_tree = cache_tree[header_end + 1:header_end + 1 + size].hex()
    head_tree = commit_tree(repository, commit)
    return head_tree is not None and head_tree != index_tree


def commit_tree(repository: Repository, commit: str) -> str | None:
    """The tree of a commit stored as a loose object; None when it is packed (not read here)."""
    try:
        payload = zlib.decompress((repository.common_dir / "objects" / commit[:2] / commit[2:]).read_bytes())
    except (OSError, zlib.error):
        return None
    found = re.search(rb"\0tree ([0-9a-f]+)\n", payload)
    return found.group(1).decode() if found else None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
