"""Owned writes: --output-dir replaces only what jwksdeploy wrote, key files are written
private set first (a failure after it is refused next time and repaired), and a run killed
at any point leaves every file old or new (never torn), no private key behind, and a rerun
that converges."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from jwksdeploy import writes
from jwksdeploy.errors import OutputError
from jwksdeploy.writes import MANIFEST, OutputFile
from jwksdeploy.writes import tree as trees
from jwksdeploy.writes.atomic import sha256_of
from jwksdeploy.writes.tree import MISSING, Manifest, OnDisk, Owned, plan_tree

from .helpers import EXAMPLES, REPO, run

RSA_JWKS = str(EXAMPLES / "jwks-rsa.json")
PLAIN_URL = "http://127.0.0.1:31456/jwks"


def render_into(out: Path, *args: str) -> Result:
    return run("render", "--jwks", RSA_JWKS, *args, "--output-dir", str(out))


def gateway_into(out: Path, *args: str) -> Result:
    return run(
        "gateway", "--provider", "envoy", "--url", PLAIN_URL, *args, "--output-dir", str(out)
    )


def snapshot(*roots: Path) -> dict[str, Any]:
    """Every entry below the roots, symlinks not followed: kind, mode and bytes or link target."""
    found: dict[str, Any] = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                path = Path(folder, name)
                key = f"{root.name}/{path.relative_to(root).as_posix()}"
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode):
                    found[key] = ("link", os.readlink(path))
                elif stat.S_ISDIR(info.st_mode):
                    found[key] = ("dir", stat.S_IMODE(info.st_mode))
                else:
                    found[key] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
    return found


def staging_leftovers(snap: Mapping[str, Any]) -> list[str]:
    return [
        key
        for key in snap
        if Path(key).name.startswith(writes.STAGING_PREFIX) and Path(key).name != MANIFEST
    ]


def the_error(result: Result) -> str:
    """The one error paragraph: a single `error:` line, last on stderr, no traceback."""
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    assert [line for line in lines if line.startswith("error:")] == [lines[-1]]
    return lines[-1]


def manifest_of(out: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((out / MANIFEST).read_text())
    return document


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    """`chattr +i` for the duration, or skip where the file system or privileges lack it."""
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


# --- defect 1: --output-dir deletes the user's files -----------------------------------------


def test_the_repro_keeps_the_users_files_and_adds_ours(tmp_path: Path) -> None:
    k8s = tmp_path / "k8s"
    (k8s / "base").mkdir(parents=True)
    (k8s / "base" / "deployment.yaml").write_text("kind: Deployment\n")
    (k8s / "kustomization.yaml").write_text("resources: []\n")
    result = render_into(k8s, "-n", "a")
    assert result.exit_code == 0, result.stderr
    assert (k8s / "base" / "deployment.yaml").read_text() == "kind: Deployment\n"
    assert (k8s / "kustomization.yaml").read_text() == "resources: []\n"
    assert sorted(p.name for p in (k8s / "a").iterdir()) == [
        "configmap-jwks-config.yaml",
        "deployment-remote-jwks-go.yaml",
        "kustomization.yaml",
        "service-remote-jwks-go.yaml",
    ]
    assert set(manifest_of(k8s)["files"]) == {f"a/{p.name}" for p in (k8s / "a").iterdir()}


def test_render_and_gateway_share_a_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render_into(out, "-n", "a").exit_code == 0
    assert gateway_into(out).exit_code == 0
    gateway_files = snapshot(out / "envoy")
    assert gateway_files and (out / "a" / "kustomization.yaml").exists()
    # render for another namespace replaces its own files and leaves the gateway's alone
    result = render_into(out, "-n", "b")
    assert result.exit_code == 0, result.stderr
    assert not (out / "a").exists()
    assert (out / "b" / "kustomization.yaml").exists()
    assert snapshot(out / "envoy") == gateway_files
    producers = {entry["producer"] for entry in manifest_of(out)["files"].values()}
    assert producers == {"render", "gateway envoy"}
    # the same gateway again changes nothing, not even a timestamp
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert gateway_into(out).exit_code == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_a_file_jwksdeploy_did_not_write_is_refused_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "service-remote-jwks-go.yaml").write_text("kind: Service # mine\n")
    (out / "notes.txt").write_text("mine\n")
    before = snapshot(out)
    result = render_into(out, "-n", "a")
    assert result.exit_code == 5
    error = the_error(result)
    assert "service-remote-jwks-go.yaml (a file jwksdeploy did not write)" in error
    assert "Nothing was changed" in error and "--force" in error
    assert snapshot(out) == before

    forced = render_into(out, "-n", "a", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert "--force replaced" in forced.stderr
    assert "mine" not in (out / "a" / "service-remote-jwks-go.yaml").read_text()
    assert (out / "notes.txt").read_text() == "mine\n"
    assert "notes.txt" not in manifest_of(out)["files"]


def test_an_edited_file_is_refused_then_forced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render_into(out, "-n", "a").exit_code == 0
    edited = out / "a" / "deployment-remote-jwks-go.yaml"
    edited.write_text(edited.read_text() + "# tuned by hand\n")
    before = snapshot(out)
    result = render_into(out, "-n", "a", "--replicas", "2")
    assert result.exit_code == 5
    assert "edited since `jwksdeploy render` wrote it" in the_error(result)
    assert snapshot(out) == before
    assert render_into(out, "-n", "a", "--replicas", "2", "--force").exit_code == 0
    assert "# tuned by hand" not in edited.read_text()


def test_another_producers_file_is_not_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render_into(out, "-n", "envoy").exit_code == 0
    # a gateway writing into DIR/envoy/ shares the directory, not the files
    assert gateway_into(out).exit_code == 0
    manifest = manifest_of(out)
    files = {
        path: {"producer": "render", "sha256": entry["sha256"]}
        for path, entry in manifest["files"].items()
    }
    (out / MANIFEST).write_text(json.dumps({**manifest, "files": files}))  # all "render" now
    before = snapshot(out)
    result = gateway_into(out)
    assert result.exit_code == 5
    assert "(written by `jwksdeploy render`)" in the_error(result)
    assert snapshot(out) == before


def test_stale_files_go_unless_edited_and_user_files_stay(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render_into(out, "-n", "a", "-n", "b", "-n", "c").exit_code == 0
    (out / "b" / "kustomization.yaml").write_text("resources: [mine.yaml]\n")
    (out / "c" / "README").write_text("mine\n")
    result = render_into(out, "-n", "a")
    assert result.exit_code == 0, result.stderr
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.name != MANIFEST) == [
        "a",
        "a/configmap-jwks-config.yaml",
        "a/deployment-remote-jwks-go.yaml",
        "a/kustomization.yaml",
        "a/service-remote-jwks-go.yaml",
        "b",
        "b/kustomization.yaml",
        "c",
        "c/README",
    ]
    assert "kept " in result.stderr and "yours now" in result.stderr
    assert (out / "b" / "kustomization.yaml").read_text() == "resources: [mine.yaml]\n"
    assert sorted(manifest_of(out)["files"]) == [
        f"a/{name}"
        for name in (
            "configmap-jwks-config.yaml",
            "deployment-remote-jwks-go.yaml",
            "kustomization.yaml",
            "service-remote-jwks-go.yaml",
        )
    ]
    # the kept file is the user's now: rendering b again refuses to overwrite it
    again = render_into(out, "-n", "a", "-n", "b")
    assert again.exit_code == 5
    assert "b/kustomization.yaml (a file jwksdeploy did not write)" in the_error(again)


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text("do not touch\n")
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "configmap-jwks-config.yaml").symlink_to(outside / "secret.yaml")
    before = snapshot(out, outside)
    result = render_into(out, "-n", "a")
    assert result.exit_code == 5
    assert "configmap-jwks-config.yaml (a symbolic link)" in the_error(result)
    assert snapshot(out, outside) == before
    # --force replaces the link itself, never the file it points at
    assert render_into(out, "-n", "a", "--force").exit_code == 0
    assert not (out / "a" / "configmap-jwks-config.yaml").is_symlink()
    assert (outside / "secret.yaml").read_text() == "do not touch\n"

    # a symlinked parent directory that leads out is refused even with --force
    escape = tmp_path / "escape"
    escape.mkdir()
    (escape / "b").symlink_to(outside, target_is_directory=True)
    before = snapshot(escape, outside)
    for extra in ((), ("--force",)):
        refused = render_into(escape, "-n", "b", *extra)
        assert refused.exit_code == 5
        assert "b (a symbolic link where a directory is needed)" in the_error(refused)
        assert snapshot(escape, outside) == before


def test_a_damaged_manifest_is_refused_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render_into(out, "-n", "a").exit_code == 0
    (out / MANIFEST).write_text('{"version": 1, "files": {"../etc/passwd": {}}}')
    before = snapshot(out)
    result = render_into(out, "-n", "a")
    assert result.exit_code == 5
    assert "is damaged" in the_error(result)
    assert snapshot(out) == before
    # --force starts a new record; the old files count as foreign and are overwritten
    assert render_into(out, "-n", "a", "--force").exit_code == 0
    assert sorted(manifest_of(out)["files"])[0] == "a/configmap-jwks-config.yaml"


def test_output_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("a file\n")
    result = render_into(target, "-n", "a")
    assert result.exit_code == 5
    assert "is not a directory" in the_error(result)
    assert target.read_text() == "a file\n"


def test_an_immutable_file_stops_the_tree_before_anything_changes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render_into(out, "-n", "a").exit_code == 0
    before = snapshot(out)
    with immutable(out / "a" / "deployment-remote-jwks-go.yaml"):
        # --replicas 2 rewrites the Deployment and the kustomization and adds a PDB
        result = render_into(out, "-n", "a", "--replicas", "2")
        assert result.exit_code == 5
        error = the_error(result)
        assert "deployment-remote-jwks-go.yaml" in error and "Nothing was changed" in error
    assert snapshot(out) == before


def test_a_replace_that_fails_after_others_landed_says_so_and_a_rerun_finishes(
    tmp_path: Path,
) -> None:
    """No undo (dropped): the files before it stay new, the interim manifest proves them
    ours, and rerunning once the cause is gone converges without --force."""
    out = tmp_path / "out"
    writes.write_tree(str(out), TREE_OLD, "render")
    real = os.replace

    def failing(source: Any, target: Any, **kwargs: Any) -> None:
        if target == "w.yaml":
            raise OSError(5, "Input/output error", target)
        real(source, target, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "replace", failing)
        with pytest.raises(OutputError) as failed:
            writes.write_tree(str(out), {"a/x.yaml": "x: 2\n", "a/w.yaml": "w: 1\n"}, "render")
    message = str(failed.value)
    assert "w.yaml: Input/output error" in message and "Some files were replaced" in message
    assert (out / "a" / "x.yaml").read_text() == "x: 2\n" and not (out / "a" / "w.yaml").exists()
    assert staging_leftovers(snapshot(out)) == []
    writes.write_tree(str(out), TREE_NEW, "render")
    assert sorted(manifest_of(out)["files"]) == sorted(TREE_NEW)
    for path, content in TREE_NEW.items():
        assert (out / path).read_text() == content


def test_a_failed_render_into_a_new_directory_leaves_no_directory(tmp_path: Path) -> None:
    result = run(
        "render", "--jwks", RSA_JWKS, "--replicas", "0", "--output-dir", str(tmp_path / "x")
    )
    assert result.exit_code == 3
    assert list(tmp_path.iterdir()) == []


# --- the pure planning ------------------------------------------------------------------------

CONTENT = {"a/x.yaml": "x: 1\n", "a/y.yaml": "y: 1\n"}
X, Y = sha256_of(b"x: 1\n"), sha256_of(b"y: 1\n")
OLD = sha256_of(b"old\n")
DIR = OnDisk("directory")


def mine(*paths: str, producer: str = "render", digest: str = X) -> dict[str, Owned]:
    return {path: Owned(digest, producer) for path in paths}


def test_plan_for_an_empty_directory_writes_all_and_records_them() -> None:
    plan = plan_tree(CONTENT, "render", Manifest(), {}, force=False)
    assert dict(plan.writes) == CONTENT
    assert plan.mkdirs == ("a",) and plan.refusals == () and plan.removes == {}
    assert plan.manifest == Manifest(
        {"a/x.yaml": Owned(X, "render"), "a/y.yaml": Owned(Y, "render")}, frozenset({"a"})
    )


@pytest.mark.parametrize(
    ("state", "owner", "reason", "forcible"),
    [
        (OnDisk("file", OLD), None, "a file jwksdeploy did not write", True),
        (
            OnDisk("file", OLD),
            Owned(X, "render"),
            "edited since `jwksdeploy render` wrote it",
            True,
        ),
        (
            OnDisk("file", X),
            Owned(X, "gateway envoy"),
            "written by `jwksdeploy gateway envoy`",
            True,
        ),
        (OnDisk("symlink"), Owned(X, "render"), "a symbolic link", True),
        (OnDisk("directory"), None, "a directory, not a file", False),
        (OnDisk("other"), None, "a special file, not a file", False),
    ],
)
def test_plan_refuses_what_is_not_ours(
    state: OnDisk, owner: Owned | None, reason: str, forcible: bool
) -> None:
    manifest = Manifest({"a/x.yaml": owner} if owner else {}, frozenset())
    disk = {"a": DIR, "a/x.yaml": state}
    plan = plan_tree(CONTENT, "render", manifest, disk, force=False)
    assert plan.refusals == (trees.Refusal("a/x.yaml", reason, forcible),)
    forced = plan_tree(CONTENT, "render", manifest, disk, force=True)
    if forcible:
        assert forced.refusals == () and forced.forced == plan.refusals
        assert forced.writes["a/x.yaml"] == CONTENT["a/x.yaml"]
        assert forced.manifest.files["a/x.yaml"] == Owned(X, "render")
    else:
        assert forced.refusals == plan.refusals


def test_plan_refuses_a_parent_that_is_not_a_directory_once() -> None:
    disk = {"a": OnDisk("file", OLD), "a/x.yaml": OnDisk("blocked"), "a/y.yaml": OnDisk("blocked")}
    plan = plan_tree(CONTENT, "render", Manifest(), disk, force=True)
    assert plan.refusals == (trees.Refusal("a", "a file where a directory is needed", False),)


def test_plan_keeps_unchanged_files_and_changes_nothing() -> None:
    manifest = Manifest(
        {"a/x.yaml": Owned(X, "render"), "a/y.yaml": Owned(Y, "render")}, frozenset({"a"})
    )
    disk = {"a": DIR, "a/x.yaml": OnDisk("file", X), "a/y.yaml": OnDisk("file", Y)}
    plan = plan_tree(CONTENT, "render", manifest, disk, force=False)
    assert plan.unchanged == ("a/x.yaml", "a/y.yaml") and not plan.changes


def test_plan_removes_its_stale_files_releases_edited_ones_and_keeps_others() -> None:
    manifest = Manifest(
        {
            **mine("a/x.yaml"),
            **mine("b/gone.yaml", "b/edited.yaml", "b/missing.yaml", digest=OLD),
            **mine("envoy/filter.yaml", "b/theirs.yaml", producer="gateway envoy", digest=OLD),
        },
        frozenset({"a", "b", "c"}),
    )
    disk = {
        "a": DIR,
        "a/x.yaml": OnDisk("file", X),
        "b/gone.yaml": OnDisk("file", OLD),
        "b/edited.yaml": OnDisk("file", X),
        "b/missing.yaml": MISSING,
    }
    plan = plan_tree({"a/x.yaml": "x: 1\n"}, "render", manifest, disk, force=False)
    assert plan.removes == {"b/gone.yaml": OLD}
    assert plan.released == ("b/edited.yaml",)
    # b still holds the gateway's file; c holds nothing of ours
    assert plan.rmdirs == ("c",)
    assert plan.manifest == Manifest(
        {
            **mine("a/x.yaml"),
            **mine("b/theirs.yaml", "envoy/filter.yaml", producer="gateway envoy", digest=OLD),
        },
        frozenset({"a", "b"}),
    )


@pytest.mark.parametrize(
    "path", ["", "/etc/x", "a/../x", "./x", "a//x", "a\\x", "a/.jwksdeploy-manifest.json"]
)
def test_paths_that_could_leave_the_directory_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="not a plain relative path"):
        trees.check_relative(path)


def test_manifest_round_trip_and_damage() -> None:
    manifest = Manifest(mine("a/x.yaml", "b/y.yaml"), frozenset({"a", "b"}))
    assert trees.parse_manifest(trees.manifest_json(manifest).encode()) == manifest
    for damaged in (
        "[]",
        '{"version": 2, "files": {}}',
        '{"version": 1, "files": {"../x": {"sha256": "' + X + '", "producer": "render"}}}',
        '{"version": 1, "files": {"x": {"sha256": "short", "producer": "render"}}}',
        '{"version": 1, "files": {}, "dirs": ["/abs"]}',
        '{"version": 1, "files": {}, "dirs": [[]]}',
    ):
        with pytest.raises(ValueError):
            trees.parse_manifest(damaged.encode())


def test_a_deeply_nested_manifest_is_damage_not_a_crash(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text("[" * 100_000)
    result = render_into(out, "-n", "a")
    assert result.exit_code == 5
    assert "is damaged" in the_error(result)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST]


def test_the_interim_manifest_proves_both_versions_ours() -> None:
    """Before the first file lands, the manifest records each new file beside the sha256 of
    the version it replaces, so a killed run's files, old or new, are still ours."""
    manifest = Manifest({**mine("a/x.yaml", digest=OLD), **mine("b/gone.yaml")}, frozenset("ab"))
    disk = {"a": DIR, "a/x.yaml": OnDisk("file", OLD), "b": DIR, "b/gone.yaml": OnDisk("file", X)}
    plan = plan_tree({"a/x.yaml": "x: 1\n"}, "render", manifest, disk, force=False)
    assert plan.interim == Manifest(
        {"a/x.yaml": Owned(X, "render", OLD), "b/gone.yaml": Owned(X, "render")},
        frozenset("ab"),
    )
    assert plan.manifest == Manifest(mine("a/x.yaml"), frozenset("a"))
    assert trees.parse_manifest(trees.manifest_json(plan.interim).encode()) == plan.interim
    for digest in (X, OLD):
        disk["a/x.yaml"] = OnDisk("file", digest)
        rerun = plan_tree({"a/x.yaml": "y: 2\n"}, "render", plan.interim, disk, force=False)
        assert rerun.refusals == () and "a/x.yaml" in rerun.writes
    disk["a/x.yaml"] = OnDisk("file", Y)
    edited = plan_tree({"a/x.yaml": "y: 2\n"}, "render", plan.interim, disk, force=False)
    assert [r.path for r in edited.refusals] == ["a/x.yaml"]


# --- crash safety: kill at every step ---------------------------------------------------------


class Crash(BaseException):
    """The process died here (not an Exception: nothing may catch it as an error)."""


@contextlib.contextmanager
def dies_after(budget: int | None) -> Iterator[list[int]]:
    """Let `budget` file-system changes happen, then die at the next one and at every later
    one, so no cleanup code can change what the crash left. Yields the count of changes."""
    count = [0]

    def wrap(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def change(*args: Any, **kwargs: Any) -> Any:
            if name == "open" and not args[1] & os.O_CREAT:
                return real(*args, **kwargs)
            if budget is not None and count[0] >= budget:
                raise Crash(name)
            count[0] += 1
            return real(*args, **kwargs)

        return change

    with pytest.MonkeyPatch.context() as patch:
        for name in ("open", "fchmod", "rename", "replace", "link", "unlink", "mkdir", "rmdir"):
            patch.setattr(os, name, wrap(name, getattr(os, name)))
        yield count


def crash_matrix(
    setup: Callable[[Path], None],
    change: Callable[[Path], None],
    tmp_path: Path,
    killed: Callable[[Path, dict[str, Any]], None] = lambda case, snap: None,
) -> int:
    """Run `change` once per step, killed before that step. What the crash left holds every
    file old or new (never torn; `killed` checks more); running `change` again then gives
    exactly the new state, with no temp files left. Returns the number of steps."""
    reference = tmp_path / "reference"
    setup(reference)
    old = snapshot(reference)
    with dies_after(None) as count:
        change(reference)
    new = snapshot(reference)
    assert new != old and count[0] > 5
    for step in range(count[0]):
        case = tmp_path / f"step{step}"
        setup(case)
        with pytest.raises(Crash), dies_after(step):
            change(case)
        left = {key.replace(case.name, "reference", 1): v for key, v in snapshot(case).items()}
        for key, value in left.items():
            if Path(key).name.startswith(writes.STAGING_PREFIX):
                continue
            assert value in (old.get(key), new.get(key)), (step, key)
        killed(case, left)
        change(case)
        after = {key.replace(case.name, "reference", 1): v for key, v in snapshot(case).items()}
        assert after == new, step
    return count[0]


TREE_OLD = {"a/x.yaml": "x: 1\n", "a/y.yaml": "y: 1\n", "b/z.yaml": "z: 1\n"}
TREE_NEW = {"a/x.yaml": "x: 2\n", "a/w.yaml": "w: 1\n", "c/d/v.yaml": "v: 1\n"}


def test_a_tree_write_killed_at_any_step_converges_when_rerun(tmp_path: Path) -> None:
    def setup(case: Path) -> None:
        writes.write_tree(str(case / "out"), TREE_OLD, "render")
        (case / "out" / "mine.txt").write_text("the user's\n")

    def killed(case: Path, left: dict[str, Any]) -> None:
        # whatever is on disk is provably ours: the manifest (interim or final) proves it
        data = (case / "out" / MANIFEST).read_bytes()
        manifest = trees.parse_manifest(data)
        for path in {**TREE_OLD, **TREE_NEW}:
            if (case / "out" / path).exists():
                owner = manifest.files[path]
                assert owner.proves(sha256_of((case / "out" / path).read_bytes())), path
        assert (case / "out" / "mine.txt").read_text() == "the user's\n"

    def change(case: Path) -> None:
        writes.write_tree(str(case / "out"), TREE_NEW, "render")

    assert crash_matrix(setup, change, tmp_path, killed) > 10


def test_the_next_render_cleans_up_after_a_killed_one(tmp_path: Path) -> None:
    """Through the CLI: a render killed at each step, then a render of other output removes
    every file of both (they are provably ours) and every temp file."""
    out = tmp_path / "out"
    with dies_after(None) as count:
        render_into(out, "-n", "a")
    for step in range(count[0]):
        shutil.rmtree(out, ignore_errors=True)
        assert render_into(out, "-n", "a").exit_code == 0
        with pytest.raises(Crash), dies_after(step):
            render_into(out, "-n", "b")
        result = render_into(out, "-n", "c")
        assert result.exit_code == 0, (step, result.stderr)
        assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "c"], step
        assert staging_leftovers(snapshot(out)) == []


KILLED_RENDER = """
import os, sys
real = os.replace
def replace(source, target, **kwargs):
    real(source, target, **kwargs)
    if not str(target).startswith(".jwksdeploy-"):
        os._exit(137)  # dead right after the first file of the new tree landed
os.replace = replace
from jwksdeploy.cli import main
sys.argv = ["jwksdeploy", *sys.argv[1:]]
main()
"""


def test_a_render_process_killed_midway_is_finished_by_rerunning_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render_into(out, "-n", "a").exit_code == 0
    args = ["render", "--jwks", RSA_JWKS, "-n", "a", "--replicas", "2", "--output-dir", str(out)]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RENDER, *args], cwd=REPO, capture_output=True, text=True
    )
    assert killed.returncode == 137, killed.stderr
    assert "previous" in (out / MANIFEST).read_text(), "the interim manifest landed first"
    assert not (out / "a" / "poddisruptionbudget-remote-jwks-go.yaml").exists()
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    assert (out / "a" / "poddisruptionbudget-remote-jwks-go.yaml").exists()
    assert staging_leftovers(snapshot(out)) == []
    for path, entry in manifest_of(out)["files"].items():
        assert sha256_of((out / path).read_bytes()) == entry["sha256"]
        assert "previous" not in entry


def test_concurrent_writers_take_turns(tmp_path: Path) -> None:
    """Threads in one process: flock serializes them, and every run sees a whole tree."""
    out = str(tmp_path / "out")
    failures: list[BaseException] = []

    def writer(index: int) -> None:
        files = {f"n{index % 3}/x.yaml": f"x: {index}\n", "shared/k.yaml": f"k: {index % 2}\n"}
        try:
            writes.write_tree(out, files, "render")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    manifest = manifest_of(Path(out))
    on_disk = sorted(
        p.relative_to(out).as_posix()
        for p in Path(out).rglob("*")
        if p.is_file() and p.name != MANIFEST
    )
    assert sorted(manifest["files"]) == on_disk and len(on_disk) == 2
    for path, entry in manifest["files"].items():
        assert sha256_of((Path(out) / path).read_bytes()) == entry["sha256"]


def test_concurrent_render_processes_into_one_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "jwksdeploy", "render", "--jwks", RSA_JWKS, "--output-dir"]
    processes = [
        subprocess.Popen(
            [*command, str(out), "-n", namespace],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for namespace in ("a", "b", "c")
    ]
    results = [(p.wait(), p.communicate()[1]) for p in processes]
    for code, stderr in results:
        assert code == 0 and "Traceback" not in stderr, stderr
    # the last writer's namespace is all that is left, and the manifest says so
    [left] = [p.name for p in out.iterdir() if p.name != MANIFEST]
    assert {path.split("/")[0] for path in manifest_of(out)["files"]} == {left}
    assert staging_leftovers(snapshot(out)) == []


# --- defect 2: two files that must change together -------------------------------------------


def key_paths(tmp_path: Path) -> tuple[Path, Path]:
    """Private and public set in different directories, so one can fail alone."""
    (tmp_path / "private").mkdir(parents=True, exist_ok=True)
    (tmp_path / "public").mkdir(parents=True, exist_ok=True)
    return tmp_path / "private" / "jwks.private.json", tmp_path / "public" / "jwks.json"


def generate(private: Path, public: Path, *args: str) -> Result:
    return run("jwks", "generate", "--private-out", str(private), "--out", str(public), *args)


def rotate(private: Path, public: Path, *args: str) -> Result:
    return run("jwks", "rotate", "--private", str(private), "--jwks", str(public), *args)


def kids(path: Path) -> list[str]:
    return [key["kid"] for key in json.loads(path.read_text())["keys"]]


def refused_then_repaired(private: Path, public: Path) -> None:
    """The next key command refuses the sets as out of step and names `jwks public`, which
    brings them back in step from the private set."""
    files = ("--private", str(private), "--jwks", str(public))
    refused = run("rotate", "status", "--local", *files)
    assert refused.exit_code == 3
    error = the_error(refused)
    repair = f"jwksdeploy jwks public --private {private} --jwks {public} --force"
    assert "out of step" in error and repair in error
    assert run(*repair.split()[1:]).exit_code == 0
    assert run("rotate", "status", "--local", *files).exit_code == 0
    assert kids(private) == kids(public)


def test_generate_force_over_an_immutable_public_set_keeps_the_new_private_set(
    tmp_path: Path,
) -> None:
    """No undo (dropped): the private set and its record land first and stay; the public set
    is left old, refused as out of step next time and re-derived by `jwks public`."""
    private, public = key_paths(tmp_path)
    assert generate(private, public).exit_code == 0
    old_public = public.read_bytes()
    with immutable(public):
        result = generate(private, public, "--force")
        assert result.exit_code == 5
        error = the_error(result)
        assert f"cannot replace {str(public)!r}" in error
        assert f"after {str(private)!r} and " in error and "were written" in error
        assert "out of step" in error
        assert public.read_bytes() == old_public and kids(private) != kids(public)
    refused_then_repaired(private, public)
    assert staging_leftovers(snapshot(tmp_path)) == []


def test_rotate_with_an_immutable_public_set_is_refused_then_repaired(tmp_path: Path) -> None:
    private, public = key_paths(tmp_path)
    assert generate(private, public).exit_code == 0
    with immutable(public):
        result = rotate(private, public)
        assert result.exit_code == 5
        assert "out of step" in the_error(result)
    assert len(kids(private)) == 2 and len(kids(public)) == 1  # the new key is never lost
    refused_then_repaired(private, public)


@pytest.mark.parametrize("blocker", ["directory", "parent-is-a-file"])
def test_a_public_target_that_cannot_be_written_changes_nothing(
    tmp_path: Path, blocker: str
) -> None:
    """Portable (works as root too): a target that is a directory, or under a file."""
    private, public = key_paths(tmp_path)
    assert generate(private, public).exit_code == 0
    if blocker == "directory":
        target = tmp_path / "public" / "taken"
        (target / "inside").mkdir(parents=True)
    else:
        target = public / "jwks.json"  # public is a file
    before = snapshot(tmp_path)
    result = run(
        "jwks",
        "generate",
        "--add-to",
        str(public),
        "--private-out",
        str(private),
        "--out",
        str(target),
    )
    assert result.exit_code == 5
    assert str(target) in the_error(result)
    assert snapshot(tmp_path) == before


def test_a_failed_public_replace_keeps_the_private_set_and_says_so(tmp_path: Path) -> None:
    """os.replace failing on the public set after the private set was replaced (e.g. the
    disk failing): no undo (dropped), the error names what was written, the next command
    refuses the pair and `jwks public` repairs it. Portable: works where chattr does not."""
    private, public = key_paths(tmp_path)
    assert generate(private, public).exit_code == 0
    old_public = public.read_bytes()
    real = os.replace

    def failing(source: Any, target: Any, **kwargs: Any) -> None:
        if str(target) == str(public):
            raise OSError(5, "Input/output error", str(target))
        real(source, target, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "replace", failing)
        result = rotate(private, public)
    assert result.exit_code == 5
    error = the_error(result)
    assert "Input/output error" in error and f"after {str(private)!r}" in error
    assert public.read_bytes() == old_public and len(kids(private)) == 2
    assert staging_leftovers(snapshot(tmp_path)) == []
    refused_then_repaired(private, public)


def test_a_key_write_killed_at_any_step_leaves_each_file_old_or_new(tmp_path: Path) -> None:
    def outputs(case: Path, version: str) -> list[OutputFile]:
        private, public = key_paths(case)
        return [
            OutputFile(str(private), f'{{"keys": [{{"d": "SECRET-{version}"}}]}}\n', True, True),
            OutputFile(str(public), f'{{"keys": [{{"x": "{version}"}}]}}\n', False, True),
        ]

    def setup(case: Path) -> None:
        case.mkdir()
        writes.write_files(outputs(case, "old"), force=True)

    def killed(case: Path, left: dict[str, Any]) -> None:
        # a file holding a private key is never readable by others, temp files included
        for path in case.rglob("*"):
            if path.is_file() and b"SECRET" in path.read_bytes():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    def change(case: Path) -> None:
        writes.write_files(outputs(case, "new"), force=False)

    crash_matrix(setup, change, tmp_path, killed)


def private_members(path: Path) -> set[str]:
    return {key["d"] for key in json.loads(path.read_text())["keys"] if "d" in key}


def files_holding(root: Path, secrets: set[str]) -> list[str]:
    """Every file below root (hidden ones too) whose bytes hold one of the secrets."""
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file()
        and not path.is_symlink()
        and any(secret.encode() in path.read_bytes() for secret in secrets)
    )


def test_a_killed_generate_leaves_no_private_key_once_the_next_write_ran(tmp_path: Path) -> None:
    """kill -9 at every step of `jwks generate` (between link(temp, target) and unlink(temp)
    among them); the next write in the directory removes the temp files, so after it and a
    `rotate revoke` the revoked key is in no file at all."""
    reference = key_paths(tmp_path / "reference")
    with dies_after(None) as count:
        generate(*reference)
    linked_left = 0
    for step in range(count[0]):
        case = tmp_path / f"step{step}"
        private, public = key_paths(case)
        with pytest.raises(Crash), dies_after(step):
            generate(private, public)
        left = [p for p in private.parent.iterdir() if p.name.startswith(".jwksdeploy-")]
        for temp in left:
            assert stat.S_IMODE(temp.stat().st_mode) == 0o600, (step, temp)
        if private.exists() and any(os.path.samefile(temp, private) for temp in left):
            linked_left += 1
        assert generate(private, public, "--force").exit_code == 0, step
        revoked = private_members(private)
        [kid] = kids(private)
        files = ("--private", str(private), "--jwks", str(public))
        result = run("rotate", "revoke", "--kid", kid, "--local", *files)
        assert result.exit_code == 0, (step, result.stderr)
        assert files_holding(case, revoked) == [], step
        assert files_holding(case, private_members(private)) == ["private/jwks.private.json"]
        assert staging_leftovers(snapshot(case)) == [], step
    assert linked_left, "no step left the temp file as a second link of the private set"


def test_a_rotation_killed_between_the_files_is_refused_then_repaired(tmp_path: Path) -> None:
    """The private set is written first: killed after it, the next command refuses the sets
    as out of step and names `jwks public`, which brings them back in step."""
    private, public = key_paths(tmp_path)
    assert generate(private, public).exit_code == 0
    first = kids(private)
    for step in range(1, 30):
        with pytest.raises(Crash), dies_after(step):
            rotate(private, public)
        if (
            kids(private) != kids(public)
            and (private.parent / "jwks.private.rotation.json").exists()
        ):
            record = json.loads((private.parent / "jwks.private.rotation.json").read_text())
            if len(record["state"]["keys"]) == 2:
                break  # the private set and its record are rotated, the public set is not
        assert not generate(private, public, "--force").exit_code  # back to one key
        first = kids(private)
    else:
        pytest.fail("no step left the public set behind")
    assert kids(public) == first and len(kids(private)) == 2
    files = ("--private", str(private), "--jwks", str(public))
    refused = run("rotate", "status", "--local", *files)
    assert refused.exit_code == 3
    error = the_error(refused)
    assert "out of step" in error
    repair = f"jwksdeploy jwks public --private {private} --jwks {public} --force"
    assert repair in error
    assert run(*repair.split()[1:]).exit_code == 0
    result = run("rotate", "status", "--local", *files)
    assert result.exit_code == 0, result.stderr
    assert kids(private) == kids(public) and len(kids(public)) == 2
    assert "next" in result.stdout, "the new key was recorded next before the public set"
    assert staging_leftovers(snapshot(tmp_path)) == []


@pytest.mark.parametrize("spelling", ["same", "dot-slash", "symlink", "hard-link"])
def test_jwks_public_refuses_to_write_over_its_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("jwks", "generate", "--private", "k.json", "--jwks", "pub.json").exit_code == 0
    out = {
        "same": "k.json",
        "dot-slash": "./k.json",
        "symlink": "link.json",
        "hard-link": "hl.json",
    }
    if spelling == "symlink":
        (tmp_path / "link.json").symlink_to("k.json")
    if spelling == "hard-link":
        os.link(tmp_path / "k.json", tmp_path / "hl.json")
    before = snapshot(tmp_path)
    result = run("jwks", "public", "--private", "k.json", "--jwks", out[spelling], "--force")
    assert result.exit_code == 3
    error = the_error(result)
    assert "the same file" in error and "Nothing was written" in error
    assert snapshot(tmp_path) == before
    assert private_members(tmp_path / "k.json")
    elsewhere = run("jwks", "public", "--private", "./k.json", "--jwks", "pub.json", "--force")
    assert elsewhere.exit_code == 0, elsewhere.stderr
    assert not private_members(tmp_path / "pub.json")


def test_out_of_step_sets_are_refused_naming_the_newer_file(tmp_path: Path) -> None:
    private, public = key_paths(tmp_path)
    assert generate(private, public).exit_code == 0
    assert rotate(private, public).exit_code == 0
    document = json.loads(public.read_text())
    public.write_text(json.dumps({"keys": document["keys"][:1]}))  # as an old tool might leave it
    os.utime(public, (1_700_000_000, 1_700_000_000))
    os.utime(private, (1_700_000_060, 1_700_000_060))
    before = snapshot(tmp_path)
    result = rotate(private, public)
    assert result.exit_code == 3
    error = the_error(result)
    assert "out of step" in error
    assert f"{private} is the newer file (modified 2023-11-14 22:14:20 UTC" in error
    assert f"jwksdeploy jwks public --private {private} --jwks {public} --force" in error
    assert snapshot(tmp_path) == before


def test_modes_private_0600_public_0644_oct_public_0600(tmp_path: Path) -> None:
    private, public = key_paths(tmp_path)
    assert generate(private, public).exit_code == 0
    assert rotate(private, public).exit_code == 0
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    assert generate(private, public, "--alg", "HS256", "--force").exit_code == 0
    assert stat.S_IMODE(public.stat().st_mode) == 0o600


def test_add_to_with_another_out_updates_the_private_set_without_force(tmp_path: Path) -> None:
    private, public = key_paths(tmp_path)
    assert generate(private, public).exit_code == 0
    other = tmp_path / "public" / "next.json"
    result = run(
        "jwks",
        "generate",
        "--add-to",
        str(public),
        "--private-out",
        str(private),
        "--out",
        str(other),
    )
    assert result.exit_code == 0, result.stderr
    assert kids(other) == kids(private) and len(kids(other)) == 2
    # The --add-to file moves with the private set (it stayed behind: a pair out of step).
    assert kids(public) == kids(private)


def test_jwks_public_out_over_an_immutable_file_is_refused(tmp_path: Path) -> None:
    private, public = key_paths(tmp_path)
    assert generate(private, public).exit_code == 0
    before = snapshot(tmp_path)
    with immutable(public):
        result = run("jwks", "public", str(private), "--out", str(public), "--force")
        assert result.exit_code == 5
        assert "cannot replace" in the_error(result)
    assert snapshot(tmp_path) == before


def test_a_device_is_never_replaced_by_a_key_file(tmp_path: Path) -> None:
    private, _ = key_paths(tmp_path)
    result = run("jwks", "generate", "--private-out", str(private), "--out", "/dev/null", "--force")
    assert result.exit_code == 5
    assert "'/dev/null' is not a regular file" in the_error(result)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert list(private.parent.iterdir()) == []


def test_the_same_file_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    with pytest.raises(OutputError, match="same file"):
        writes.write_files(
            [OutputFile(str(path), "{}", True), OutputFile(f"{tmp_path}/./k.json", "{}", False)],
            force=True,
        )
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Moved from the hostile suites (issue 9): key file names and concurrent renders
# ---------------------------------------------------------------------------------------------
# A NUL or an over-long name is refused with nothing changed; concurrent renders leave one tree.

import yaml  # noqa: E402

from .helpers import key_pair_files  # noqa: E402
from .refusals import assert_clean_stderr, assert_refused, invoke, spawn_many  # noqa: E402
from .refusals import snapshot as files_state  # noqa: E402


@pytest.mark.usefixtures("in_tmp")
@pytest.mark.parametrize(
    "args",
    [
        ["jwks", "generate", "--add-to", "a\x00b"],
        ["jwks", "rotate", "--private", "a\x00b"],
        ["rotate", "status", "-n", "ns", "--private", "a\x00b"],
    ],
    ids=["generate-add-to", "jwks-rotate", "rotate-status"],
)
def test_nul_in_a_key_file_path_is_refused(args: list[str], tmp_path: Path) -> None:
    key_pair_files(tmp_path)
    before = files_state(tmp_path)
    outcome = invoke(*args)
    assert_refused(outcome, (3, 5), before=before, after=files_state(tmp_path), mentions=["NUL"])


@pytest.mark.usefixtures("in_tmp")
def test_generate_with_the_longest_file_names(tmp_path: Path) -> None:
    """255 bytes is a valid name; the transaction's journal beside it must still fit."""
    public, private = "j" * 250 + ".json", "p" * 250 + ".json"
    outcome = invoke("jwks", "generate", "--jwks", public, "--private", private)
    assert outcome.code == 0, outcome.describe()
    assert json.loads((tmp_path / public).read_text())["keys"]
    assert json.loads((tmp_path / private).read_text())["keys"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".jwksdeploy-")]


@pytest.mark.usefixtures("in_tmp")
@pytest.mark.parametrize("command", [["jwks", "generate", "--jwks"], ["jwks", "public", "--jwks"]])
def test_file_name_too_long_is_refused(command: list[str], tmp_path: Path) -> None:
    key_pair_files(tmp_path)
    before = files_state(tmp_path)
    outcome = invoke(*command, "x" * 300)
    assert_refused(outcome, (3, 5), before=before, after=files_state(tmp_path))


@pytest.mark.usefixtures("in_tmp")
def test_concurrent_renders_into_one_directory_leave_one_tree(
    tmp_path: Path, jwks_file: Path
) -> None:
    """Several renders into one --output-dir at once: each succeeds or refuses cleanly, and
    the directory ends as one complete tree with no staging directories left behind (issue 9,
    repro 8)."""
    out_dir = tmp_path / "out"
    runs = [
        [
            "render",
            "--jwks",
            str(jwks_file),
            "-n",
            "a",
            "-n",
            "b",
            "--replicas",
            str(n),
            "--output-dir",
            str(out_dir),
        ]
        for n in (1, 2, 3, 4)
    ]
    outcomes = spawn_many(runs, tmp_path, timeout=60)
    for out in outcomes:
        if out.code != 0:
            assert_refused(out, (5,))
        else:
            assert_clean_stderr(out)
    assert any(out.code == 0 for out in outcomes), [o.describe() for o in outcomes]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "jwks.json",
        "out",
    ], sorted(os.listdir(tmp_path))
    replicas = set()
    for namespace in ("a", "b"):
        folder = out_dir / namespace
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        for name in kustomization["resources"]:
            document = yaml.safe_load((folder / name).read_text())
            if document["kind"] == "Deployment":
                replicas.add(document["spec"]["replicas"])
    assert len(replicas) == 1, f"the tree mixes runs: replicas {replicas}"
