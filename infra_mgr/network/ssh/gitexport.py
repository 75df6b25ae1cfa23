"""Export of every device's configuration into a git repository (dulwich, no ``git`` binary), for
teams that already review changes in git.

Layout: ``<site code>/<hostname>.cfg``, one commit per stored version in the order they were
collected, authored by the person (or the trigger: schedule, trap) with the collection time as
the date, so ``git log -p site/host.cfg`` is the device's history. The export is incremental: the
repository itself remembers which version of each device it holds (``.infra-mgr-export.json`` in
the tree, and a ``Config-Version-Id`` trailer in each commit), so a repository cloned elsewhere or
moved keeps working and nothing outside it can fall out of step.

Only masked text is stored in the database, so only masked text reaches the repository.

An export reads only the versions newer than those the repository holds (filtered in SQL), and
their texts in batches, so a years-old database costs what changed since the last export. Each
commit rewrites only the site folder that changed. Two devices whose names give the same file name
(``a/b`` and ``a_b``) must not overwrite each other: the later one's file name carries its id.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo
from sqlalchemy import Engine, case
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from infra_mgr.config import Settings, get_settings
from infra_mgr.db import read_session
from infra_mgr.inventory.models import Device, Site
from infra_mgr.network.ssh.models import ConfigVersion

STATE_FILE = ".infra-mgr-export.json"
TEXT_BATCH = 200  # configuration texts held in memory at once
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


class _Trees:
    """The repository's trees (one directory level: site folders), rewritten per commit only for
    the folders whose files changed."""

    def __init__(self, files: dict[str, ObjectID]) -> None:
        self.folders: dict[str, dict[str, ObjectID]] = {}
        self.top: dict[str, ObjectID] = {}
        self.ids: dict[str, ObjectID] = {}
        self.dirty: set[str] = set()
        for path, blob_id in files.items():
            self.set(path, blob_id)

    def set(self, path: str, blob_id: ObjectID | None) -> None:
        folder, _, name = path.rpartition("/")
        entries = self.folders.setdefault(folder, {}) if folder else self.top
        if blob_id is None:
            entries.pop(name, None)
        else:
            entries[name] = blob_id
        if folder:
            self.dirty.add(folder)

    def write(self, repo: Repo) -> ObjectID:
        for folder in self.dirty:
            entries = self.folders.get(folder, {})
            if not entries:
                self.folders.pop(folder, None)
                self.ids.pop(folder, None)
                continue
            tree = Tree()
            for name, blob_id in entries.items():
                tree.add(name.encode(), 0o100644, blob_id)
            repo.object_store.add_object(tree)
            self.ids[folder] = tree.id
        self.dirty.clear()
        root = Tree()
        for name, blob_id in self.top.items():
            root.add(name.encode(), 0o100644, blob_id)
        for folder, tree_id in self.ids.items():
            root.add(folder.encode(), stat.S_IFDIR, tree_id)
        repo.object_store.add_object(root)
        return root.id


def _safe(part: str) -> str:
    """A path component that cannot climb out of its folder."""
    cleaned = part.replace("/", "_").replace("\\", "_").strip(".") or "_"
    return cleaned


def _texts(engine: Engine, version_ids: list[int]) -> dict[int, str]:
    with read_session(engine) as session:
        return {int(i or 0): t for i, t in session.exec(select(ConfigVersion.id, ConfigVersion.text)
                                                        .where(col(ConfigVersion.id).in_(version_ids))).all()}


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
            newer = (col(ConfigVersion.number) > case(done, value=col(ConfigVersion.device_id), else_=0)
                     if done else col(ConfigVersion.number) > 0)
            versions = [(int(r[0]), int(r[1]), int(r[2]), r[3], str(r[4]), str(r[5])) for r in session.execute(
                sa_select(col(ConfigVersion.id), col(ConfigVersion.device_id), col(ConfigVersion.number),
                          col(ConfigVersion.collected_at), col(ConfigVersion.actor), col(ConfigVersion.trigger))
                .where(newer, col(ConfigVersion.device_id).in_(list(devices)))
                .order_by(col(ConfigVersion.collected_at), col(ConfigVersion.id))).all()]
        if not versions:
            return 0
        try:
            parent: ObjectID | None = repo.refs[BRANCH]
        except KeyError:
            parent = None
        files.setdefault("README", _blob(repo, README))
        trees = _Trees(files)
        owners = {str(info.get("path")): key for key, info in exported.items()}
        texts: dict[int, str] = {}
        for index, (version_id, device_id, number, collected_at, actor, trigger) in enumerate(versions):
            if version_id not in texts:  # the next batch of texts, read only now
                texts = _texts(engine, [v[0] for v in versions[index:index + TEXT_BATCH]])
            text = texts.pop(version_id)
            hostname, site_code = devices[device_id]
            file_path = f"{_safe(site_code)}/{_safe(hostname)}.cfg"
            if owners.get(file_path, str(device_id)) != str(device_id):  # another device's name gives this file
                file_path = f"{_safe(site_code)}/{_safe(hostname)}-{device_id}.cfg"
            previous = exported.get(str(device_id), {}).get("path")
            if previous and previous != file_path:
                files.pop(previous, None)  # the device was renamed or moved to another site
                trees.set(previous, None)
                owners.pop(previous, None)
            owners[file_path] = str(device_id)
            files[file_path] = _blob(repo, text.encode("utf-8"))
            trees.set(file_path, files[file_path])
            exported[str(device_id)] = {"number": number, "version_id": version_id, "path": file_path}
            files[STATE_FILE] = _blob(repo, (json.dumps({"devices": exported}, indent=1, sort_keys=True) + "\n")
                                      .encode())
            trees.set(STATE_FILE, files[STATE_FILE])
            commit = Commit()
            commit.tree = trees.write(repo)
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
