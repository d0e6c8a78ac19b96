"""LocalForge: the embedded forge — bare git repositories on disk, issues and pull requests in SQLite.

It behaves like GitHub where the pipeline can tell the difference: issue and pull request numbers
share one sequence per repository, opening a pull request for a branch that has one returns it,
and merging refuses conflicts, closed and already-merged pull requests.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from prefect.blocks.core import Block
from pydantic import Field
from sqlalchemy import Engine, event, update
from sqlmodel import Field as Column
from sqlmodel import Session, SQLModel, create_engine, select

from blocks import git
from blocks.forge import (
    AlreadyMerged,
    BaseMoved,
    Issue,
    IssueNotFound,
    MergeConflict,
    PullRequest,
    PullRequestClosed,
)
from mergemeter.settings import data_dir


def _now() -> datetime:
    return datetime.now(UTC)


class ForgeRepo(SQLModel, table=True):
    __tablename__ = "forge_repo"
    name: str = Column(primary_key=True)
    default_branch: str = "main"
    next_number: int = 1
    sensitive: bool = False  # its code may reach self-hosted models only


class ForgeIssue(SQLModel, table=True):
    __tablename__ = "forge_issue"
    id: int | None = Column(default=None, primary_key=True)
    repo: str = Column(index=True)
    number: int
    title: str
    body: str = ""
    labels: str = "[]"
    state: str = "open"
    claimed_by: str | None = None
    updated_at: datetime = Column(default_factory=_now)


class ForgeComment(SQLModel, table=True):
    __tablename__ = "forge_comment"
    id: int | None = Column(default=None, primary_key=True)
    repo: str = Column(index=True)
    number: int
    body: str
    key: str | None = Column(default=None, index=True)
    created_at: datetime = Column(default_factory=_now)


class ForgePullRequest(SQLModel, table=True):
    __tablename__ = "forge_pull_request"
    id: int | None = Column(default=None, primary_key=True)
    repo: str = Column(index=True)
    number: int
    head: str
    base: str
    title: str
    body: str = ""
    state: str = "open"
    merged_sha: str | None = None
    created_at: datetime = Column(default_factory=_now)


_TABLES = [ForgeRepo, ForgeIssue, ForgeComment, ForgePullRequest]


@cache
def _engine(db_path: str) -> Engine:
    engine = create_engine(f"sqlite:///{db_path}", connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _wal(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in _TABLES])  # type: ignore[attr-defined]
    return engine


class LocalForge(Block):
    """The embedded forge: bare git repositories under a folder plus a SQLite issue tracker.

    Examples:
        Load a saved local forge and list what is ready:
        ```python
        from blocks.local_forge import LocalForge

        forge = LocalForge.load("BLOCK_NAME")
        forge.ready_issues("sample/textkit", "agent-ready")
        ```
    """

    _block_type_name = "Local Forge"
    _description = "Bare git repositories on disk with issues and pull requests in SQLite."

    root: str | None = Field(
        default=None,
        description="Folder holding repos/ and forge.db. Empty: <mergemeter data folder>/forge.",
    )

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def root_path(self) -> Path:
        return Path(self.root).expanduser() if self.root else data_dir() / "forge"

    def _session(self) -> Session:
        self.root_path.mkdir(parents=True, exist_ok=True)
        return Session(_engine(str(self.root_path / "forge.db")))

    def bare_path(self, repo: str) -> Path:
        return self.root_path / "repos" / f"{repo}.git"

    @contextmanager
    def _repo_lock(self, repo: str) -> Iterator[None]:
        lock_path = self.root_path / "locks" / f"{repo.replace('/', '__')}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _next_number(self, session: Session, repo: str) -> int:
        row = session.get(ForgeRepo, repo)
        if row is None:
            raise IssueNotFound(f"no repository {repo!r} on this forge")
        number = row.next_number
        row.next_number += 1
        session.add(row)
        return number

    # -- set-up (what a person does on the forge) -----------------------------------------------
    def create_repository(
        self, repo: str, source: Path, default_branch: str = "main", sensitive: bool = False
    ) -> str:
        """Create ``repo`` from the files in ``source``; return the first commit's sha.

        A ``sensitive`` repository's code only ever reaches self-hosted models.
        """
        bare = self.bare_path(repo)
        if bare.exists():
            raise FileExistsError(f"repository {repo!r} already exists at {bare}")
        bare.parent.mkdir(parents=True, exist_ok=True)
        git.git(
            bare.parent,
            "init",
            "--quiet",
            "--bare",
            f"--initial-branch={default_branch}",
            str(bare),
        )
        with tempfile.TemporaryDirectory(prefix="mm-seed-") as tmp:
            work = Path(tmp) / "work"
            shutil.copytree(source, work, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            git.git(work, "init", "--quiet", f"--initial-branch={default_branch}")
            sha = git.commit_all(work, "Initial commit")
            git.git(work, "push", "--quiet", str(bare), f"HEAD:refs/heads/{default_branch}")
        with self._session() as session:
            session.add(ForgeRepo(name=repo, default_branch=default_branch, sensitive=sensitive))
            session.commit()
        return sha

    def add_issue(
        self, repo: str, title: str, body: str = "", labels: list[str] | None = None
    ) -> Issue:
        """File a new issue; returns it with its number."""
        with self._session() as session:
            number = self._next_number(session, repo)
            row = ForgeIssue(
                repo=repo, number=number, title=title, body=body, labels=json.dumps(labels or [])
            )
            session.add(row)
            session.commit()
            return self._issue(row)

    def edit_issue(self, issue: Issue, title: str | None = None, body: str | None = None) -> Issue:
        with self._session() as session:
            row = self._issue_row(session, issue.repo, issue.number)
            row.title = title if title is not None else row.title
            row.body = body if body is not None else row.body
            row.updated_at = _now()
            session.add(row)
            session.commit()
            return self._issue(row)

    # -- reading ---------------------------------------------------------------------------------
    @staticmethod
    def _issue(row: ForgeIssue) -> Issue:
        return Issue(
            repo=row.repo,
            number=row.number,
            title=row.title,
            body=row.body,
            labels=json.loads(row.labels),
            state=row.state,
        )

    @staticmethod
    def _issue_row(session: Session, repo: str, number: int) -> ForgeIssue:
        row = session.exec(
            select(ForgeIssue).where(ForgeIssue.repo == repo, ForgeIssue.number == number)
        ).first()
        if row is None:
            raise IssueNotFound(f"{repo}#{number} is not an issue on this forge")
        return row

    def repositories(self) -> list[str]:
        with self._session() as session:
            return [r.name for r in session.exec(select(ForgeRepo).order_by(ForgeRepo.name))]

    def is_sensitive(self, repo: str) -> bool:
        with self._session() as session:
            meta = session.get(ForgeRepo, repo)
        if meta is None:
            raise IssueNotFound(f"no repository {repo!r} on this forge")
        return meta.sensitive

    def get_issue(self, repo: str, number: int) -> Issue:
        with self._session() as session:
            return self._issue(self._issue_row(session, repo, number))

    def ready_issues(self, repo: str, label: str) -> list[Issue]:
        """Open, unclaimed issues carrying ``label``, oldest first."""
        with self._session() as session:
            rows = session.exec(
                select(ForgeIssue)
                .where(ForgeIssue.repo == repo, ForgeIssue.state == "open")
                .order_by(ForgeIssue.number)
            ).all()
            return [
                self._issue(r) for r in rows if label in json.loads(r.labels) and not r.claimed_by
            ]

    def comments(self, repo: str, number: int) -> list[str]:
        with self._session() as session:
            rows = session.exec(
                select(ForgeComment)
                .where(ForgeComment.repo == repo, ForgeComment.number == number)
                .order_by(ForgeComment.id)
            )
            return [r.body for r in rows]

    def pull_requests(self, repo: str) -> list[PullRequest]:
        with self._session() as session:
            rows = session.exec(
                select(ForgePullRequest)
                .where(ForgePullRequest.repo == repo)
                .order_by(ForgePullRequest.number)
            )
            return [self._pull_request(r) for r in rows]

    def _pull_request(self, row: ForgePullRequest) -> PullRequest:
        return PullRequest(
            repo=row.repo,
            number=row.number,
            head=row.head,
            base=row.base,
            title=row.title,
            state=row.state,
            merged_sha=row.merged_sha,
            url=f"local://{row.repo}/pull/{row.number}",
        )

    def head_sha(self, repo: str, branch: str | None = None) -> str:
        with self._session() as session:
            meta = session.get(ForgeRepo, repo)
        if meta is None:
            raise IssueNotFound(f"no repository {repo!r} on this forge")
        return git.out(
            self.bare_path(repo), "rev-parse", f"refs/heads/{branch or meta.default_branch}"
        )

    # -- the pipeline's operations ----------------------------------------------------------------
    def claim(self, issue: Issue, claimant: str) -> bool:
        """Atomically mark ``issue`` as taken by ``claimant``; True also when it already holds it."""
        with self._session() as session:
            result = session.exec(  # type: ignore[call-overload]
                update(ForgeIssue)
                .where(
                    ForgeIssue.repo == issue.repo,
                    ForgeIssue.number == issue.number,
                    ForgeIssue.state == "open",
                    (ForgeIssue.claimed_by.is_(None)) | (ForgeIssue.claimed_by == claimant),  # type: ignore[union-attr]
                )
                .values(claimed_by=claimant, updated_at=_now())
            )
            session.commit()
            return result.rowcount == 1

    def workspace(self, repo: str, ref: str | None = None) -> Path:
        """A fresh clone of ``repo`` at ``ref`` (default: the base branch), in a new folder."""
        parent = Path(tempfile.mkdtemp(prefix="ws-", dir=self._workspaces()))
        return git.clone(self.bare_path(repo), parent / "repo", ref)

    def _workspaces(self) -> Path:
        path = self.root_path / "workspaces"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def push(self, workspace: Path, branch: str) -> None:
        git.git(workspace, "push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}")

    def open_pull_request(self, issue: Issue, branch: str, title: str, body: str) -> PullRequest:
        """Open a pull request from ``branch``; if one is open or merged for it, return that one."""
        with self._repo_lock(issue.repo), self._session() as session:
            existing = session.exec(
                select(ForgePullRequest).where(
                    ForgePullRequest.repo == issue.repo,
                    ForgePullRequest.head == branch,
                    ForgePullRequest.state != "closed",
                )
            ).first()
            if existing is not None:
                return self._pull_request(existing)
            meta = session.get(ForgeRepo, issue.repo)
            assert meta is not None
            row = ForgePullRequest(
                repo=issue.repo,
                number=self._next_number(session, issue.repo),
                head=branch,
                base=meta.default_branch,
                title=title,
                body=body,
            )
            session.add(row)
            session.commit()
            return self._pull_request(row)

    def merge(self, pr: PullRequest, expected_base: str | None = None) -> str:
        """Merge ``pr`` into its base and return the merge commit.

        Raises AlreadyMerged, PullRequestClosed, MergeConflict, or BaseMoved when
        ``expected_base`` is given and the base is no longer there.
        """
        with self._repo_lock(pr.repo), self._session() as session:
            row = session.exec(
                select(ForgePullRequest).where(
                    ForgePullRequest.repo == pr.repo, ForgePullRequest.number == pr.number
                )
            ).one()
            current = self._pull_request(row)
            if row.state == "merged":
                raise AlreadyMerged(current, f"already merged as {row.merged_sha}")
            if row.state == "closed":
                raise PullRequestClosed(current, "closed without merging")
            base_sha = self.head_sha(pr.repo, row.base)
            if expected_base and base_sha != expected_base:
                raise BaseMoved(
                    current, f"{row.base} moved from {expected_base[:10]} to {base_sha[:10]}"
                )
            with tempfile.TemporaryDirectory(prefix="mm-merge-", dir=self._workspaces()) as tmp:
                work = git.clone(self.bare_path(pr.repo), Path(tmp) / "repo", base_sha)
                merged = git.git(
                    work,
                    "merge",
                    "--no-ff",
                    "-m",
                    f"Merge pull request #{row.number} from {row.head}\n\n{row.title}",
                    f"origin/{row.head}",
                    check=False,
                )
                if merged.returncode != 0:
                    raise MergeConflict(current, f"{row.head} conflicts with {row.base}")
                sha = git.out(work, "rev-parse", "HEAD")
                git.git(work, "push", "--quiet", "origin", f"HEAD:refs/heads/{row.base}")
            row.state, row.merged_sha = "merged", sha
            session.add(row)
            session.commit()
            return sha

    def close_pull_request(self, pr: PullRequest) -> None:
        with self._session() as session:
            session.exec(  # type: ignore[call-overload]
                update(ForgePullRequest)
                .where(
                    ForgePullRequest.repo == pr.repo,
                    ForgePullRequest.number == pr.number,
                    ForgePullRequest.state == "open",
                )
                .values(state="closed")
            )
            session.commit()

    def comment(self, repo: str, number: int, body: str, key: str | None = None) -> None:
        """Comment on an issue or pull request; a comment with the same ``key`` is posted once."""
        with self._repo_lock(repo), self._session() as session:
            if key is not None:
                posted = session.exec(
                    select(ForgeComment).where(
                        ForgeComment.repo == repo,
                        ForgeComment.number == number,
                        ForgeComment.key == key,
                    )
                ).first()
                if posted is not None:
                    return
            session.add(ForgeComment(repo=repo, number=number, body=body, key=key))
            session.commit()

    def add_label(self, issue: Issue, label: str) -> None:
        with self._session() as session:
            row = self._issue_row(session, issue.repo, issue.number)
            labels = json.loads(row.labels)
            if label not in labels:
                row.labels = json.dumps([*labels, label])
                session.add(row)
                session.commit()

    def close_issue(self, issue: Issue, comment: str) -> None:
        """Close ``issue`` with ``comment``; closing a closed issue does nothing."""
        with self._session() as session:
            row = self._issue_row(session, issue.repo, issue.number)
            if row.state == "closed":
                return
            row.state = "closed"
            row.updated_at = _now()
            session.add(row)
            session.add(ForgeComment(repo=issue.repo, number=issue.number, body=comment))
            session.commit()
