"""The git child process: fetch one branch or tag into a bare mirror and read a commit's YAML files.

GitPython leaks memory and file descriptors in long-running processes and blocks, so the controller
never imports it: `GitSource` runs this file as a short-lived child process (one per fetch) and kills
it, with its whole process group, when it overruns its timeout.

Protocol: one JSON request on stdin, one JSON reply on stdout (so credentials in the URL do not appear
in this process's command line).

    request: {"url", "mirror", "refspec", "ref", "subdir", "known", "fallback"}
    reply:   {"ok": true, "sha", "committed_at", "files": [[path, base64], ...] | null, "stale": null | "..."}
             {"ok": false, "error": "..."}

`files` is null when the ref still points at `known` (nothing to load). With `fallback` (a controller
starting with nothing in force), a failed fetch still answers with the commit the mirror holds from an
earlier fetch, and `stale` says why it could not be refreshed. Files come from the commit's
tree, never a working tree: every *.yaml / *.yml blob under `subdir`, hidden directories and files and
symbolic links skipped, named by their path in the repository.

Boundary: this file imports only the standard library and GitPython (run as a script, it must not pull
in the controller).
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import git

YAML_SUFFIXES = (".yaml", ".yml")  # as controller.config.source
_LINK_MODE = 0o120000


def _open_mirror(mirror: Path) -> git.Repo:
    try:
        return git.Repo(mirror)
    except (git.NoSuchPathError, git.InvalidGitRepositoryError):
        if mirror.exists():  # a broken mirror (e.g. interrupted creation): start again
            shutil.rmtree(mirror)
        return git.Repo.init(mirror, bare=True, mkdir=True)


def _tree_files(commit: git.Commit, subdir: str) -> list[list[str]]:
    tree = commit.tree
    if subdir:
        try:
            sub = tree / subdir
        except KeyError:
            return []
        if not isinstance(sub, git.Tree):
            return []
        tree = sub
    out: list[list[str]] = []
    for item in tree.traverse(prune=lambda i, _d: str(getattr(i, "name", "")).startswith(".")):
        if not isinstance(item, git.Blob) or item.mode & 0o170000 == _LINK_MODE:
            continue
        if item.name.endswith(YAML_SUFFIXES) and not item.name.startswith("."):
            out.append([str(item.path), base64.b64encode(item.data_stream.read()).decode("ascii")])
    out.sort()
    return out


def fetch(req: dict[str, Any]) -> dict[str, Any]:
    repo = _open_mirror(Path(req["mirror"]))
    with repo:
        stale = None
        try:
            repo.git.fetch("--no-tags", "--force", "--quiet", "--", req["url"], req["refspec"])
        except git.GitCommandError as exc:
            stale = _git_error(exc)
            if not req.get("fallback"):
                return {"ok": False, "error": stale}
        try:
            commit = repo.commit(req["ref"])
        except Exception as exc:  # BadName, ValueError; an empty mirror after a failed first fetch
            if stale is not None:
                return {"ok": False, "error": stale}
            return {"ok": False, "error": f"{req['ref']} not found after fetching: {exc}"}
        sha = commit.hexsha
        files = None if sha == req.get("known") else _tree_files(commit, req.get("subdir") or "")
        return {"ok": True, "sha": sha, "committed_at": commit.committed_date, "files": files, "stale": stale}


def _git_error(exc: git.GitCommandError) -> str:
    stderr = exc.stderr if isinstance(exc.stderr, str) else str(exc.stderr or "")
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    lines = [ln.removeprefix("stderr:").strip().strip("'").strip() for ln in lines]
    lines = [ln for ln in lines if ln]
    fatal = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]
    return "; ".join(fatal or lines[-2:]) or f"git fetch exited with status {exc.status}"


def main() -> int:
    try:
        req = json.load(sys.stdin)
        reply = fetch(req)
    except Exception as exc:
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    json.dump(reply, sys.stdout)
    sys.stdout.flush()
    return 0 if reply["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
