"""Owned writes: output trees (`--output-dir`, tree.py) and key files (keyfiles.py), each file
replaced atomically (atomic.py). An output tree's files are replaced or removed only when its
manifest proves jwksdeploy wrote them; a killed run leaves every file old or new."""

from .atomic import STAGING_PREFIX
from .keyfiles import OutputFile, key_files_locked, same_file, write_files
from .tree import MANIFEST, write_tree

__all__ = [
    "MANIFEST",
    "STAGING_PREFIX",
    "OutputFile",
    "key_files_locked",
    "same_file",
    "write_files",
    "write_tree",
]
