"""Export of every device's configuration into a git repository (dulwich, no ``git`` binary), for
teams that already review changes in git.

Layout: ``<site code>/<hostname>.cfg``, one commit per stored version in the order they were
collected, authored by the person (or the trigger: schedule, trap) with the collection time as
the date, so ``git log -p site/host.cfg`` is the device's history. The export is incremental: the
repository itself remembers which version of each device it holds (``.infra-mgr-export.json`` in
the tree, and a ``Config-Version-Id`` trailer in each commit), so a repository cloned elsewhere or
moved keeps working and nothing outside it can fall out of step.

Only masked text is stored in the database, so only masked text reaches the repository.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo
from sqlalchemy import Engine
from sqlmodel import col, select

from infra_mgr.config import Settings, get_settings
from infra_mgr.db import read_session
from infra_mgr.inventory.models import Device, Site
from infra_mgr.network.ssh.models import ConfigVersion

STATE_FILE = ".infra-mgr-export.json"
BRANCH = Ref(b"refs/heads/main")
COMMITTER = b"infra-mgr <infra-mgr@localhost>"
README = (b"Device configurations exported by infra-mgr: <site>/<hostname>.cfg, one commit per stored\n"
          b"version (secrets masked). Do not edit: the next export would not see the change.\n")


def default_path(settings: Settings | None = None) -> Path:
    """The repository the export writes to: setting ``backup_git_path``, else ``data_dir/config-git``."""
    settings = settings or get_settings()
    return settings.backup_git_path or settings.data_dir / "config-git"


def _open(path: Path) -> Repo:
    if (path / ".git").exists() or (path / "HEAD").exists():
        return Repo(str(path))
    path.mkdir(parents=True, exist_ok=True)
    repo = Repo.init(str(path))
    repo.refs.set_symbolic_ref(Ref(b"HEAD"), BRANCH)
    return repo


def _head_files(repo: Repo) -> dict[str, ObjectID]:
    """path -> blob id of every file at HEAD (empty for a new repository)."""
    try:
        head = repo.refs[BRANCH]
    except KeyError:
        return {}
    commit = repo[head]
    assert isinstance(commit, Commit)
    files: dict[str, ObjectID] = {}

    def walk(tree_id: ObjectID, prefix: str) -> None:
        tree = repo[tree_id]
        assert isinstance(tree, Tree)
        for entry in tree.iteritems():
            name = prefix + entry.path.decode()
            if stat.S_ISDIR(entry.mode):
                walk(entry.sha, name + "/")
            else:
                files[name] = entry.sha

    walk(commit.tree, "")
    return files


def _read_state(repo: Repo, files: dict[str, ObjectID]) -> dict[str, Any]:
    blob_id = files.get(STATE_FILE)
    if blob_id is None:
        return {"devices": {}}
    blob = repo[blob_id]
    assert isinstance(blob, Blob)
    data = json.loads(blob.data.decode())
    return data if isinstance(data, dict) and isinstance(data.get("devices"), dict) else {"devices": {}}


def _blob(repo: Repo, data: bytes) -> ObjectID:
    blob = Blob.from_string(data)
    repo.object_store.add_object(blob)
    return blob.id


def _tree(repo: Repo, files: dict[str, ObjectID]) -> ObjectID:
    """Write the trees for ``files`` (one directory level: site folders) and return the root's id."""
    root = Tree()
    folders: dict[str, Tree] = {}
    for path, blob_id in files.items():
        folder, _, name = path.rpartition("/")
        if folder:
            folders.setdefault(folder, Tree()).add(name.encode(), 0o100644, blob_id)
        else:
            root.add(name.encode(), 0o100644, blob_id)
    for folder, tree in folders.items():
        repo.object_store.add_object(tree)
        root.add(folder.encode(), stat.S_IFDIR, tree.id)
    repo.object_store.add_object(root)
    return root.id


def _safe(part: str) -> str:
    """A path component that cannot climb out of its folder."""
    cleaned = part.replace("/", "_").replace("\\", "_").strip(".") or "_"
    return cleaned


def export(engine: Engine, repo_path: Path | str) -> int:
    """Commit every version stored since the last export; returns how many commits were made."""
    path = Path(repo_path)
    repo = _open(path)
    try:
        files = _head_files(repo)
        state = _read_state(repo, files)
        exported: dict[str, dict[str, Any]] = state["devices"]
        with read_session(engine) as session:
            devices = {d.id: (d.hostname, code) for d, code in
                       session.exec(select(Device, Site.code).join(Site, col(Site.id) == col(Device.site_id))).all()}
            done = {int(k): int(v.get("number", 0)) for k, v in exported.items()}
            pending = [v for v in session.exec(select(ConfigVersion).order_by(col(ConfigVersion.collected_at),
                                                                              col(ConfigVersion.id))).all()
                       if v.number > done.get(v.device_id, 0) and v.device_id in devices]
            # detach what the commits need (text included) before the session closes
            versions = [(v.id, v.device_id, v.number, v.text, v.collected_at, v.actor, v.trigger) for v in pending]
        if not versions:
            return 0
        try:
            parent: ObjectID | None = repo.refs[BRANCH]
        except KeyError:
            parent = None
        files.setdefault("README", _blob(repo, README))
        for version_id, device_id, number, text, collected_at, actor, trigger in versions:
            hostname, site_code = devices[device_id]
            file_path = f"{_safe(site_code)}/{_safe(hostname)}.cfg"
            previous = exported.get(str(device_id), {}).get("path")
            if previous and previous != file_path:
                files.pop(previous, None)  # the device was renamed or moved to another site
            files[file_path] = _blob(repo, text.encode("utf-8"))
            exported[str(device_id)] = {"number": number, "version_id": version_id, "path": file_path}
            files[STATE_FILE] = _blob(repo, (json.dumps({"devices": exported}, indent=1, sort_keys=True) + "\n")
                                      .encode())
            commit = Commit()
            commit.tree = _tree(repo, files)
            commit.parents = [parent] if parent else []
            who = (actor or trigger or "infra-mgr").replace("<", "").replace(">", "").replace("\n", " ")
            commit.author = f"{who} <{trigger}@infra-mgr>".encode()
            commit.committer = COMMITTER
            when = int(collected_at.timestamp())
            commit.author_time = commit.commit_time = when
            commit.author_timezone = commit.commit_timezone = 0
            commit.encoding = b"UTF-8"
            commit.message = (f"{hostname}: version {number} ({trigger})\n\nConfig-Version-Id: {version_id}\n"
                              f"Device-Id: {device_id}\n").encode()
            repo.object_store.add_object(commit)
            parent = commit.id
        assert parent is not None
        repo.refs[BRANCH] = parent
        if not repo.bare:
            repo.get_worktree().reset_index()  # the working tree shows what HEAD holds
        return len(versions)
    finally:
        repo.close()
