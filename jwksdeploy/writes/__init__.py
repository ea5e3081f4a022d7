"""Owned writes: output trees (`--output-dir`, tree.py) and key-file sets (keyfiles.py),
all-or-nothing, with the journal, lock and file primitives they share in _shared.py.

An output tree's files are replaced or removed only when jwksdeploy wrote them (its manifest
says so); a key set's files change together or not at all. A run that dies is finished or
undone by the next one.
"""

from ._shared import LOCK_WAIT_SECONDS, STAGING_PREFIX, check_path_text, sha256_of
from .keyfiles import (
    KeyJournal,
    OutputFile,
    key_files_locked,
    key_journal_path,
    out_of_step_detail,
    write_files,
)
from .tree import (
    JOURNAL,
    MANIFEST,
    MISSING,
    Manifest,
    OnDisk,
    Owned,
    Refusal,
    TreeJournal,
    TreePlan,
    TreeResult,
    check_relative,
    manifest_json,
    parse_manifest,
    paths_to_inspect,
    plan_tree,
    recover_tree,
    refusal_message,
    write_tree,
)

__all__ = [
    "JOURNAL",
    "LOCK_WAIT_SECONDS",
    "MANIFEST",
    "MISSING",
    "STAGING_PREFIX",
    "KeyJournal",
    "Manifest",
    "OnDisk",
    "OutputFile",
    "Owned",
    "Refusal",
    "TreeJournal",
    "TreePlan",
    "TreeResult",
    "check_path_text",
    "check_relative",
    "key_files_locked",
    "key_journal_path",
    "manifest_json",
    "out_of_step_detail",
    "parse_manifest",
    "paths_to_inspect",
    "plan_tree",
    "recover_tree",
    "refusal_message",
    "sha256_of",
    "write_files",
    "write_tree",
]
