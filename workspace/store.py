"""The workspace API: every write is one transaction; nothing is updated in place except a
browser's last state, so concurrent writers never lose each other's rows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, Select, and_, exists, func, or_, select
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from salience.core.errors import InputError
from salience.core.types import Generation, GenerationSettings, SalienceResult
from workspace import records as rec
from workspace.database import is_read_only, open_database
from workspace.owners import Author, Person, check_may_change
from workspace.results import result_from_json, result_json
from workspace.schema import (
    UID_LENGTH,
    Browser,
    Comparison,
    Note,
    Review,
    ReviewItem,
    Run,
    SalienceRecord,
    Template,
    TemplateVersion,
    Verdict,
    name_key,
    now,
)
from workspace.snapshots import SnapshotNotFound, check_id, decode, encode

MAX_NAME = 200  # a reviewer's name (template names are kept whole, however long)
MAX_IMPORT_BYTES = 25_000_000  # the largest export `import_jsonl` takes (the upload box's limit too)
EXPORT_KINDS = ("template_version", "run", "salience", "note", "comparison", "review", "verdict")
REVIEW_KINDS = ("review", "verdict")
YIELD_PER = 100  # rows fetched at a time while exporting
MAX_ROW_ID = 2**31 - 1  # ids are INTEGER columns


@dataclass(frozen=True)
class RunRow:
    """A run as the history page lists it."""

    id: int
    created_at: datetime
    template: str | None
    version_id: int | None
    model: str
    prompt: str
    output: str
    variables: dict
    settings: dict
    seconds: float
    tokens: int
    stop_reason: str
    rating: int  # sum of thumbs (+1/−1)
    notes: int
    author: Author = Author()


@dataclass(frozen=True)
class NoteRow:
    id: int
    reviewer: str
    rating: int | None
    text: str
    created_at: datetime
    run_id: int | None = None
    comparison_id: str | None = None
    author: Author = Author()


@dataclass(frozen=True)
class ComparisonRow:
    id: str
    created_at: datetime
    variants: tuple[str, ...]
    notes: int


@dataclass(frozen=True)
class VersionRow:
    id: int
    template: str
    text: str
    variables: dict
    author: str | None
    created_at: datetime


@dataclass(frozen=True)
class StoredSalience:
    id: int
    run_id: int | None
    target_text: str
    span: tuple[int, int] | None
    result: SalienceResult
    model: str
    created_at: datetime


@dataclass
class RunFilter:
    """Search terms for runs; empty fields do not filter."""

    text: str = ""  # in the prompt or the output
    template: str | None = None
    variable_value: str = ""
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    rating: str | None = None  # "up", "down", "unrated"
    with_notes: bool = False
    limit: int = 500
    ids: list[int] = field(default_factory=list)


def _row_id(value: int) -> int | None:
    """An id that a row can have, or None (a huge number from an address is no row)."""
    return value if 0 < value <= MAX_ROW_ID else None


def _template(session: Session, name: str) -> Template:
    """The template of that name, created when new."""
    key = name_key(name)
    template = session.scalar(select(Template).where(Template.name_key == key))
    if template is None:
        template = Template(name=name, name_key=key)
        session.add(template)
        session.flush()
    return template


def clean_name(text: str | None, what: str = "name", limit: int | None = None) -> str:
    """The name with its runs of spaces made one; refused (never cut) when empty or over ``limit``.

    Args:
        text: the name as typed (None counts as empty).
        what: what the name names, for the error ("template name", "reviewer name").
        limit: the most characters allowed (None: any number).

    Returns:
        The cleaned name; `InputError` when it is empty or too long.

    Example:
    >>> clean_name("  Menu   prompt ")
    'Menu prompt'
    """
    cleaned = " ".join((text or "").split())
    if not cleaned:
        raise InputError(f"The {what} is empty.")
    if limit is not None and len(cleaned) > limit:
        raise InputError(f"The {what} has {len(cleaned):,} characters; it can have at most {limit:,}.")
    return cleaned


class Workspace:
    """All reads and writes of the workspace. Thread-safe: each call has its own session."""

    def __init__(self, engine: Engine, url: str = "", notice: str = "") -> None:
        self.engine = engine
        self.url = url
        self.notice = notice
        self._writer = engine.execution_options(sqlite_immediate=True)

    @classmethod
    def open(cls, url: str | None = None) -> Workspace:
        """Open the workspace database, created and migrated to the newest schema when needed.

        Args:
            url: a SQLAlchemy URL (``sqlite:///…`` or ``postgresql://…``); None: ``$DATABASE_URL``,
                else ``workspace.sqlite3`` in the data folder.

        Returns:
            A `Workspace` on it (``notice`` says anything the user should know, e.g. read-only);
            `WorkspaceUnavailable` with a readable reason when it cannot be opened.

        Example:
        >>> workspace = Workspace.open("sqlite:///workspace.sqlite3")  # doctest: +SKIP
        >>> workspace.template_names()  # doctest: +SKIP
        []
        """
        opened = open_database(url)
        return cls(opened.engine, opened.url, opened.notice)

    def close(self) -> None:
        """Close the database's connections (the workspace is not used after this)."""
        self.engine.dispose()

    @property
    def where(self) -> str:
        """The SQLite file, or the database's URL (without its password)."""
        if self.engine.dialect.name == "sqlite" and self.engine.url.database:
            return self.engine.url.database.removeprefix("file:")
        return self.url

    def _write(self) -> Session:
        return Session(self._writer, expire_on_commit=False)

    def _read(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # Templates -------------------------------------------------------------------------

    def save_template_version(
        self,
        name: str,
        text: str,
        variables: dict[str, str],
        author: str | None = None,
        browser_id: str | None = None,
        by: Author | None = None,
    ) -> int:
        """Add a version unless it equals the template's newest one; returns the version id.

        Args:
            name: the template's name (spaces cleaned; `InputError` when empty).
            text: the template text with its ``{variables}``.
            variables: each variable's value when it was saved.
            author: the author's name in personal mode.
            browser_id: the browser that saved it.
            by: the signed-in author (its name replaces ``author``).

        Returns:
            The new version's id, or the newest version's id when nothing changed.

        Example:
        >>> version_id = workspace.save_template_version("Menu", "Describe {dish}.", {"dish": "soup"})  # doctest: +SKIP
        """
        name = clean_name(name, "template name")
        with self._write() as session, session.begin():
            template = _template(session, name)
            latest = session.scalar(
                select(TemplateVersion)
                .where(TemplateVersion.template_id == template.id)
                .order_by(TemplateVersion.id.desc())
                .limit(1)
            )
            if latest is not None and latest.text == text and latest.variables == dict(variables):
                return latest.id
            version = TemplateVersion(
                template_id=template.id,
                text=text,
                variables=dict(variables),
                browser_id=browser_id,
                **(by or Author(author)).columns(),
            )
            session.add(version)
            session.flush()
            return version.id

    def template_names(self) -> list[str]:
        """Every template's name, in alphabetical order.

        Returns:
            The names (a template exists once it has a saved version).

        Example:
        >>> workspace.template_names()  # doctest: +SKIP
        ['Menu']
        """
        with self._read() as session:
            return list(session.scalars(select(Template.name).order_by(Template.name)))

    def versions(self, name: str) -> list[VersionRow]:
        """Versions of a template, newest first.

        Args:
            name: the template's name (an unknown name has no versions).

        Returns:
            One `VersionRow` per saved version.

        Example:
        >>> [v.id for v in workspace.versions("Menu")]  # doctest: +SKIP
        [3, 1]
        """
        with self._read() as session:
            rows = session.execute(
                select(TemplateVersion, Template.name)
                .join(Template)
                .where(Template.name == name)
                .order_by(TemplateVersion.id.desc())
            )
            return [
                VersionRow(v.id, template, v.text, dict(v.variables), v.author, v.created_at)
                for v, template in rows
            ]

    def version(self, version_id: int) -> VersionRow:
        """One template version by id.

        Args:
            version_id: the id `save_template_version` returned.

        Returns:
            Its `VersionRow`; `InputError` when there is no such version.

        Example:
        >>> workspace.version(3).text  # doctest: +SKIP
        'Describe {dish}.'
        """
        with self._read() as session:
            row = session.execute(
                select(TemplateVersion, Template.name)
                .join(Template)
                .where(TemplateVersion.id == _row_id(version_id))
            ).first()
            if row is None:
                raise InputError(f"There is no template version {version_id}.")
            v, template = row
            return VersionRow(v.id, template, v.text, dict(v.variables), v.author, v.created_at)

    # Runs and salience -----------------------------------------------------------------

    def record_run(
        self,
        generation: Generation,
        model: str,
        precision: str,
        settings: GenerationSettings,
        variables: dict[str, str] | None = None,
        version_id: int | None = None,
        browser_id: str | None = None,
        by: Author | None = None,
    ) -> int:
        """Store a generation (a run) with what produced it.

        Args:
            generation: the `Generation` (prompt, output, stop reason, timings).
            model: the model's spec; precision: the compute precision it ran in.
            settings: the `GenerationSettings` it was generated with.
            variables: the template variables' values (None: none).
            version_id: the template version it was rendered from, if any.
            browser_id: the browser that ran it.
            by: who ran it (signed in: name, user id and e-mail).

        Returns:
            The new run's id.

        Example:
        >>> run_id = workspace.record_run(generation, "embedded", "bfloat16", settings)  # doctest: +SKIP
        """
        with self._write() as session, session.begin():
            run = Run(
                template_version_id=version_id,
                prompt=generation.prompt,
                variables=dict(variables or {}),
                model=model,
                precision=precision,
                settings=settings.to_json(),
                output=generation.text,
                stop_reason=generation.stop_reason,
                tokens=len(generation.token_ids),
                seconds=float(generation.seconds),
                first_token_seconds=float(generation.first_token_seconds),
                browser_id=browser_id,
                **(by or Author()).columns(),
            )
            session.add(run)
            session.flush()
            return run.id

    def record_salience(
        self,
        result: SalienceResult,
        model: str,
        precision: str,
        prompt: str,
        target: str,
        span: tuple[int, int] | None,
        run_id: int | None = None,
    ) -> int:
        """Store a salience result (in the stored result format, `workspace.results`).

        Args:
            result: the `SalienceResult` to keep.
            model, precision: the model's spec and the precision it ran in.
            prompt, target: the texts it explains.
            span: the character span of the target it explains (None: the whole target).
            run_id: the run whose output it explains, if any.

        Returns:
            The new record's id.

        Example:
        >>> workspace.record_salience(result, "embedded", "bfloat16", prompt, target, None, run_id)  # doctest: +SKIP
        """
        with self._write() as session, session.begin():
            record = SalienceRecord(
                run_id=run_id,
                model=model,
                precision=precision,
                prompt=prompt,
                target=target,
                span_start=span[0] if span else None,
                span_end=span[1] if span else None,
                target_text=result.target_text,
                result=result_json(result, model, precision),
                seconds=float(result.seconds),
            )
            session.add(record)
            session.flush()
            return record.id

    def salience_for_run(self, run_id: int) -> list[StoredSalience]:
        """The salience results stored for a run, oldest first.

        Args:
            run_id: the run's id.

        Returns:
            One `StoredSalience` per record (an unknown run has none).

        Example:
        >>> [s.span for s in workspace.salience_for_run(run_id)]  # doctest: +SKIP
        [None, (40, 52)]
        """
        with self._read() as session:
            records = session.scalars(
                select(SalienceRecord).where(SalienceRecord.run_id == run_id).order_by(SalienceRecord.id)
            )
            return [
                StoredSalience(
                    r.id,
                    r.run_id,
                    r.target_text,
                    (r.span_start, r.span_end) if r.span_start is not None else None,
                    result_from_json(r.result, r.model, r.precision),
                    r.model,
                    r.created_at,
                )
                for r in records
            ]

    def _variable_contains(self, text: str):
        """Some value of the run's variables contains the text (JSON functions of the database)."""
        each = "json_each_text" if self.engine.dialect.name == "postgresql" else "json_each"
        values = getattr(func, each)(Run.variables).table_valued("key", "value", joins_implicitly=True)
        return exists(select(1).select_from(values).where(values.c.value.icontains(text, autoescape=True)))

    def _run_query(self, terms: RunFilter) -> Select:
        rating = (
            select(func.coalesce(func.sum(Note.rating), 0)).where(Note.run_id == Run.id).scalar_subquery()
        )
        note_count = select(func.count(Note.id)).where(Note.run_id == Run.id).scalar_subquery()
        query = (
            select(Run, Template.name, rating.label("rating"), note_count.label("notes"))
            .outerjoin(TemplateVersion, Run.template_version_id == TemplateVersion.id)
            .outerjoin(Template, TemplateVersion.template_id == Template.id)
        )
        conditions = []
        if terms.text:
            conditions.append(
                or_(
                    Run.output.icontains(terms.text, autoescape=True),
                    Run.prompt.icontains(terms.text, autoescape=True),
                )
            )
        if terms.variable_value:
            conditions.append(self._variable_contains(terms.variable_value))
        if terms.template:
            conditions.append(Template.name == terms.template)
        if terms.model:
            conditions.append(Run.model == terms.model)
        if terms.since:
            conditions.append(Run.created_at >= terms.since)
        if terms.until:
            conditions.append(Run.created_at <= terms.until)
        if terms.with_notes:
            conditions.append(exists().where(and_(Note.run_id == Run.id, Note.text != "")))
        if terms.rating == "up":
            conditions.append(rating > 0)
        elif terms.rating == "down":
            conditions.append(rating < 0)
        elif terms.rating == "unrated":
            conditions.append(~exists().where(and_(Note.run_id == Run.id, Note.rating.is_not(None))))
        if terms.ids:
            conditions.append(Run.id.in_([i for i in terms.ids if _row_id(i)]))
        if conditions:
            query = query.where(and_(*conditions))
        return query.order_by(Run.id.desc()).limit(terms.limit)

    def runs(self, terms: RunFilter | None = None) -> list[RunRow]:
        """Runs matching the filter, newest first (at most ``terms.limit``).

        Args:
            terms: a `RunFilter` (None: every run, up to its default limit).

        Returns:
            One `RunRow` per run, with its template's name, thumbs total and note count.

        Example:
        >>> workspace.runs(RunFilter(text="soup", rating="up"))  # doctest: +SKIP
        """
        with self._read() as session:
            return [
                RunRow(
                    run.id,
                    run.created_at,
                    template,
                    run.template_version_id,
                    run.model,
                    run.prompt,
                    run.output,
                    dict(run.variables or {}),
                    dict(run.settings or {}),
                    run.seconds,
                    run.tokens,
                    run.stop_reason,
                    int(rating or 0),
                    int(notes or 0),
                    Author(run.author, run.author_sub, run.author_email),
                )
                for run, template, rating, notes in session.execute(self._run_query(terms or RunFilter()))
            ]

    def run(self, run_id: int) -> RunRow:
        """One run by id.

        Args:
            run_id: the run's id.

        Returns:
            Its `RunRow`; `InputError` when there is no such run.

        Example:
        >>> workspace.run(run_id).output  # doctest: +SKIP
        """
        found = self.runs(RunFilter(ids=[run_id], limit=1)) if _row_id(run_id) else []
        if not found:
            raise InputError(f"There is no run {run_id}.")
        return found[0]

    def delete_run(self, run_id: int, person: Person | None = None) -> None:
        """Delete a run with its explanations and notes.

        Allowed to its author and to admins (``person`` None: personal mode, anyone).

        Args:
            run_id: the run's id.
            person: who asks (`workspace.owners.Person`).

        Raises:
            InputError: no such run, or ``person`` may not delete it (the message says why).

        Example:
        >>> workspace.delete_run(run_id)  # doctest: +SKIP
        """
        with self._write() as session, session.begin():
            run = session.get(Run, run_id) if _row_id(run_id) else None
            if run is None:
                raise InputError(f"There is no run {run_id}; it may have been deleted.")
            check_may_change(person, "run", run.author_sub, run.author, run.author_email)
            for model in (SalienceRecord, Note):
                for row in session.scalars(select(model).where(model.run_id == run_id)):
                    session.delete(row)
            session.delete(run)

    def models(self) -> list[str]:
        """Every model that has a run, in alphabetical order.

        Returns:
            The model specs (``embedded``, ``kaggle:…``, …).

        Example:
        >>> workspace.models()  # doctest: +SKIP
        ['embedded']
        """
        with self._read() as session:
            return list(session.scalars(select(Run.model).distinct().order_by(Run.model)))

    # Notes and reviewers ---------------------------------------------------------------

    def add_note(
        self,
        reviewer: str,
        text: str = "",
        rating: int | None = None,
        run_id: int | None = None,
        comparison_id: str | None = None,
        by: Author | None = None,
    ) -> int:
        """A reviewer's thumbs (+1/−1) and/or note on a run or a comparison.

        Args:
            reviewer: the reviewer's name (personal mode).
            text: the note ("" with a rating: thumbs only).
            rating: +1, −1 or None.
            run_id, comparison_id: what the note is on; exactly one of them.
            by: the signed-in author (its name is the reviewer's).

        Returns:
            The new note's id; `InputError` when the note is empty, the rating is not ±1, or the
            run or comparison does not exist.

        Example:
        >>> workspace.add_note("Ada", "too long", rating=-1, run_id=run_id)  # doctest: +SKIP
        """
        reviewer = clean_name((by.name if by and by.name else None) or reviewer, "reviewer name", MAX_NAME)
        if rating not in (None, 1, -1):
            raise InputError("A rating is thumbs up (+1) or thumbs down (−1).")
        if (run_id is None) == (comparison_id is None):
            raise InputError("A note belongs to one run or one comparison.")
        if not text.strip() and rating is None:
            raise InputError("Write a note or give a thumbs up or down.")
        with self._write() as session, session.begin():
            if run_id is not None and (not _row_id(run_id) or session.get(Run, run_id) is None):
                raise InputError(f"There is no run {run_id}.")
            if comparison_id is not None and session.get(Comparison, comparison_id) is None:
                raise InputError(f"There is no saved comparison {comparison_id}.")
            author = Author(reviewer, by.sub, by.email) if by else Author(reviewer)
            note = Note(
                text=text,
                rating=rating,
                run_id=run_id,
                comparison_id=comparison_id,
                **author.columns("reviewer"),
            )
            session.add(note)
            session.flush()
            return note.id

    def notes(self, run_id: int | None = None, comparison_id: str | None = None) -> list[NoteRow]:
        """Notes, oldest first: on one run, one comparison, or (neither given) all.

        Args:
            run_id: only this run's notes.
            comparison_id: only this saved comparison's notes.

        Returns:
            One `NoteRow` per note.

        Example:
        >>> [n.text for n in workspace.notes(run_id=run_id)]  # doctest: +SKIP
        ['too long']
        """
        with self._read() as session:
            query = select(Note).order_by(Note.id)
            if run_id is not None:
                query = query.where(Note.run_id == run_id)
            if comparison_id is not None:
                query = query.where(Note.comparison_id == comparison_id)
            return [
                NoteRow(
                    n.id,
                    n.reviewer,
                    n.rating,
                    n.text,
                    n.created_at,
                    n.run_id,
                    n.comparison_id,
                    Author(n.reviewer, n.author_sub, n.author_email),
                )
                for n in session.scalars(query)
            ]

    def noted_runs(self) -> list[dict]:
        """One row per note on a run, with the run it is about (for the team's CSV).

        Returns:
            Plain dicts (run, when, template, model, prompt, output, reviewer, rating, note,
            noted_at), by run then note.

        Example:
        >>> rows = workspace.noted_runs()  # doctest: +SKIP
        """
        with self._read() as session:
            rows = session.execute(
                select(Note, Run, Template.name)
                .join(Run, Note.run_id == Run.id)
                .outerjoin(TemplateVersion, Run.template_version_id == TemplateVersion.id)
                .outerjoin(Template, TemplateVersion.template_id == Template.id)
                .order_by(Run.id, Note.id)
            )
            return [
                {
                    "run": run.id,
                    "when": run.created_at.isoformat(),
                    "template": template,
                    "model": run.model,
                    "prompt": run.prompt,
                    "output": run.output,
                    "reviewer": note.reviewer,
                    "rating": note.rating,
                    "note": note.text,
                    "noted_at": note.created_at.isoformat(),
                }
                for note, run, template in rows
            ]

    def set_reviewer(self, browser_id: str, name: str) -> None:
        """Remember the browser's reviewer name ("" forgets it).

        Args:
            browser_id: the browser's id.
            name: the reviewer's name; over `MAX_NAME` characters is refused (`InputError`).

        Example:
        >>> workspace.set_reviewer(browser_id, "Ada")  # doctest: +SKIP
        """
        reviewer = clean_name(name, "reviewer name", MAX_NAME) if name.strip() else None
        with self._write() as session, session.begin():
            browser = session.get(Browser, browser_id) or Browser(id=browser_id)
            browser.reviewer = reviewer
            browser.updated_at = now()
            session.add(browser)

    def reviewer(self, browser_id: str) -> str | None:
        """The reviewer name this browser last set.

        Args:
            browser_id: the browser's id.

        Returns:
            The name, or None when none is remembered.

        Example:
        >>> workspace.reviewer(browser_id)  # doctest: +SKIP
        'Ada'
        """
        with self._read() as session:
            browser = session.get(Browser, browser_id)
            return browser.reviewer if browser else None

    # A browser's last state ------------------------------------------------------------

    def save_state(self, browser_id: str, state: dict) -> None:
        """Keep a browser's last state (replacing the one before), to restore on its next visit.

        Args:
            browser_id: the browser's id.
            state: JSON-ready values.

        Example:
        >>> workspace.save_state(browser_id, {"template": "Describe {dish}."})  # doctest: +SKIP
        """
        data = json.dumps(state, ensure_ascii=False, sort_keys=True)
        with self._write() as session, session.begin():
            browser = session.get(Browser, browser_id) or Browser(id=browser_id)
            browser.state = data
            browser.updated_at = now()
            session.add(browser)

    def load_state(self, browser_id: str) -> dict | None:
        """A browser's last state.

        Args:
            browser_id: the browser's id.

        Returns:
            The state `save_state` kept, or None when there is none (or it cannot be read).

        Example:
        >>> workspace.load_state(browser_id)  # doctest: +SKIP
        {'template': 'Describe {dish}.'}
        """
        with self._read() as session:
            browser = session.get(Browser, browser_id)
            if browser is None or not browser.state:
                return None
            try:
                return json.loads(browser.state)
            except json.JSONDecodeError:
                return None

    # Saved comparisons (the permalink store) -------------------------------------------

    def save(self, snapshot: dict) -> str:
        """Save a comparison (the permalink store); saving the same snapshot again changes nothing.

        Args:
            snapshot: the comparison's JSON-ready state (`workspace.snapshots.encode`).

        Returns:
            Its id, derived from its content (the link's ``?c=`` value).

        Example:
        >>> snapshot_id = workspace.save({"variants": [...]})  # doctest: +SKIP
        """
        snapshot_id, data = encode(snapshot)
        with self._write() as session, session.begin():
            if session.get(Comparison, snapshot_id) is None:
                session.add(Comparison(id=snapshot_id, state=data.decode()))
        return snapshot_id

    def load(self, snapshot_id: str) -> dict:
        """A saved comparison by id.

        Args:
            snapshot_id: the id `save` returned.

        Returns:
            The snapshot; `SnapshotNotFound` when this server has none by that id, `InputError`
            when the id is malformed.

        Example:
        >>> workspace.load(snapshot_id)["variants"]  # doctest: +SKIP
        """
        snapshot_id = check_id(snapshot_id)
        with self._read() as session:
            comparison = session.get(Comparison, snapshot_id)
            if comparison is None:
                raise SnapshotNotFound(
                    f"No saved comparison '{snapshot_id}' on this server. Links work on the server that made "
                    "them; ask for a new link."
                )
            return decode(comparison.state.encode(), snapshot_id)

    def comparisons(self, limit: int = 200) -> list[ComparisonRow]:
        """Saved comparisons, newest first, with their variant names and note counts.

        Args:
            limit: the most comparisons listed.

        Returns:
            One `ComparisonRow` per comparison.

        Example:
        >>> [c.variants for c in workspace.comparisons(limit=10)]  # doctest: +SKIP
        [('A', 'B')]
        """
        note_count = select(func.count(Note.id)).where(Note.comparison_id == Comparison.id).scalar_subquery()
        with self._read() as session:
            rows = session.execute(
                select(Comparison, note_count).order_by(Comparison.created_at.desc()).limit(limit)
            )
            out = []
            for comparison, notes in rows:
                try:
                    variants = json.loads(comparison.state).get("variants") or []
                    names = tuple(str(v.get("name", "?")) for v in variants)
                except (json.JSONDecodeError, AttributeError):
                    names = ()
                out.append(ComparisonRow(comparison.id, comparison.created_at, names, int(notes or 0)))
            return out

    # Import and export -----------------------------------------------------------------

    def export_records(
        self, run_ids: Iterable[int] | None = None, notes_only: bool = False
    ) -> Iterator[dict]:
        """The workspace (or the chosen runs) as JSON-ready records, one kind per ``kind`` field.

        Rows are filtered in SQL and streamed (``yield_per``), so an export of a large
        workspace never holds all its runs in memory.

        Args:
            run_ids: only these runs (with their versions, explanations and notes); None: everything,
                comparisons and reviews included.
            notes_only: only runs that have notes.

        Returns:
            An iterator of records (`workspace.records` reads them back).

        Example:
        >>> kinds = {record["kind"] for record in workspace.export_records()}  # doctest: +SKIP
        """
        chosen = _chosen_runs(run_ids, notes_only)
        with self._read() as session:
            versions = select(TemplateVersion, Template.name).join(Template).order_by(TemplateVersion.id)
            if chosen is not None:
                versions = versions.where(
                    TemplateVersion.id.in_(select(Run.template_version_id).where(Run.id.in_(chosen)))
                )
            for version, name in _streamed(session, versions):
                yield _version_record(version, name)
            runs = select(Run).order_by(Run.id)
            for run in _streamed_scalars(session, runs if chosen is None else runs.where(Run.id.in_(chosen))):
                yield _run_record(run)
            saved = select(SalienceRecord).order_by(SalienceRecord.id)
            if chosen is not None:
                saved = saved.where(SalienceRecord.run_id.in_(chosen))
            for record in _streamed_scalars(session, saved):
                yield _salience_record(record)
            notes = select(Note).order_by(Note.id)
            if chosen is None:  # comparisons (and their notes) belong to whole exports only
                for comparison in _streamed_scalars(
                    session, select(Comparison).order_by(Comparison.created_at)
                ):
                    yield _comparison_record(comparison)
            else:
                notes = notes.where(Note.run_id.in_(chosen))
            for note in _streamed_scalars(session, notes):
                yield _note_record(note)
            if chosen is None:  # reviews carry their own outputs: whole exports only
                for review in _streamed_scalars(session, select(Review).order_by(Review.id)):
                    items = session.scalars(
                        select(ReviewItem)
                        .where(ReviewItem.review_id == review.id)
                        .order_by(ReviewItem.position)
                    )
                    yield _review_record(review, list(items))
                verdicts = select(Verdict, ReviewItem.position).join(ReviewItem).order_by(Verdict.id)
                for verdict, position in _streamed(session, verdicts):
                    yield _verdict_record(verdict, position)

    def export_jsonl(self, run_ids: Iterable[int] | None = None, notes_only: bool = False) -> str:
        """`export_records` as JSON Lines text, one record a line.

        Args:
            run_ids, notes_only: as `export_records`.

        Returns:
            The text (`import_jsonl` reads it back).

        Example:
        >>> Path("export.jsonl").write_text(workspace.export_jsonl())  # doctest: +SKIP
        """
        return "".join(
            json.dumps(record, ensure_ascii=False) + "\n"
            for record in self.export_records(run_ids, notes_only)
        )

    def import_jsonl(self, text: str | bytes) -> ImportCounts:
        """Add the records of an export (new row ids; links between them kept). All or nothing.

        Every field is validated first (``workspace.records``); a bad file raises an InputError
        with one line per bad row and writes nothing, and so does a database that cannot be
        written. A record already here is skipped: one with the same uid (its own, or one it was
        imported with), or, for files without uids, the same content (its fingerprint). So
        importing a workspace's own export, or a file twice, adds nothing.

        Args:
            text: the JSONL text, or its bytes (UTF-8, a byte-order mark allowed), at most
                `MAX_IMPORT_BYTES`.

        Returns:
            `ImportCounts`: records added and records skipped, by kind (`import_summary` words them).

        Example:
        >>> import_summary(workspace.import_jsonl(Path("export.jsonl").read_bytes()))  # doctest: +SKIP
        'Imported 1 run, 2 notes.'
        """
        if len(text) > MAX_IMPORT_BYTES:  # refused before any parsing
            raise InputError(
                f"The file is {len(text) / 1e6:.1f} MB, over the {MAX_IMPORT_BYTES // 1_000_000} MB an import "
                "takes (docs/SECURITY.md); import a smaller export."
            )
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8-sig")  # a byte-order mark is not part of the first line
            except UnicodeDecodeError as error:
                raise InputError(
                    f"The file is not UTF-8 text (byte {error.start + 1} cannot be read); export it again "
                    "as JSONL."
                ) from None
        text = text.removeprefix("\ufeff")
        try:
            records = rec.parse_lines(text)
        except rec.BadRows as error:
            raise InputError(str(error)) from None
        if is_read_only(self.engine):
            folder = Path(self.where).parent
            raise InputError(
                f"The workspace database {self.where} cannot be written (it or its folder {folder} is "
                "read-only); make them writable and import again."
            )
        try:
            with self._write() as session, session.begin():
                return _Importer(session).add(records)
        except rec.BadRows as error:
            raise InputError(str(error)) from None
        except (DataError, IntegrityError) as error:
            raise InputError(f"The database refused the file ({_first_line(error)}).") from None
        except SQLAlchemyError as error:
            raise InputError(
                f"The workspace database {self.where} could not be written ({_first_line(error)}); make it "
                "writable (or reachable) and import again."
            ) from None


def _first_line(error: SQLAlchemyError) -> str:
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


@dataclass(frozen=True)
class ImportCounts:
    """What an import did, by kind: records added, and records already here (skipped)."""

    added: dict[str, int]
    present: dict[str, int]

    @property
    def skipped(self) -> int:
        return sum(self.present.values())


def _counted(counts: dict[str, int]) -> str:
    """'4 template versions, 1 run' (kinds with none left out)."""
    return ", ".join(
        f"{n} {kind.replace('_', ' ')}{'' if n == 1 else 's'}" for kind, n in counts.items() if n
    )


def import_summary(counts: ImportCounts) -> str:
    """What an import did, in one sentence.

    Args:
        counts: what `Workspace.import_jsonl` returned.

    Returns:
        For example 'Imported 1 run. 2 records were already in the workspace and skipped (1 run, 1 note).'

    Example:
    >>> import_summary(ImportCounts({"run": 1}, {}))
    'Imported 1 run.'
    """
    added = _counted(counts.added)
    text = f"Imported {added}." if added else "Nothing new to import."
    skipped = counts.skipped
    if skipped:
        were = "record was" if skipped == 1 else "records were"
        text += f" {skipped} {were} already in the workspace and skipped ({_counted(counts.present)})."
    return text


# Export: which runs, streamed rows, one record per row ----------------------------------


def _chosen_runs(run_ids: Iterable[int] | None, notes_only: bool) -> Select | None:
    """The ids of the runs to export, as a subquery; None for the whole workspace."""
    if run_ids is None and not notes_only:
        return None
    query = select(Run.id)
    if run_ids is not None:
        query = query.where(Run.id.in_([i for i in run_ids if _row_id(i)]))
    if notes_only:
        query = query.where(exists().where(Note.run_id == Run.id))
    return query


def _streamed(session: Session, query: Select):
    return session.execute(query.execution_options(yield_per=YIELD_PER))


def _streamed_scalars(session: Session, query: Select):
    return _streamed(session, query).scalars()


def _who(row, *columns: str) -> dict:
    """The row's author columns that are set (a record made in personal mode exports as before)."""
    return {column: getattr(row, column) for column in columns if getattr(row, column) is not None}


def _version_record(version: TemplateVersion, name: str) -> dict:
    return {
        "kind": "template_version",
        "id": version.id,
        "uid": version.uid,
        "template": name,
        "text": version.text,
        "variables": version.variables,
        "author": version.author,
        **_who(version, *rec.IDENTITY_FIELDS),
        "created_at": version.created_at.isoformat(),
    }


def _run_record(run: Run) -> dict:
    return {
        "kind": "run",
        "id": run.id,
        "uid": run.uid,
        "template_version_id": run.template_version_id,
        "prompt": run.prompt,
        "variables": run.variables,
        "model": run.model,
        "precision": run.precision,
        "settings": run.settings,
        "output": run.output,
        "stop_reason": run.stop_reason,
        "tokens": run.tokens,
        "seconds": run.seconds,
        "first_token_seconds": run.first_token_seconds,
        **_who(run, "author", *rec.IDENTITY_FIELDS),
        "created_at": run.created_at.isoformat(),
    }


def _salience_record(record: SalienceRecord) -> dict:
    return {
        "kind": "salience",
        "id": record.id,
        "uid": record.uid,
        "run_id": record.run_id,
        "model": record.model,
        "precision": record.precision,
        "prompt": record.prompt,
        "target": record.target,
        "span": [record.span_start, record.span_end] if record.span_start is not None else None,
        "result": record.result,
        "created_at": record.created_at.isoformat(),
    }


def _comparison_record(comparison: Comparison) -> dict:
    return {
        "kind": "comparison",
        "id": comparison.id,
        "state": json.loads(comparison.state),
        "created_at": comparison.created_at.isoformat(),
    }


def _note_record(note: Note) -> dict:
    return {
        "kind": "note",
        "id": note.id,
        "uid": note.uid,
        "run_id": note.run_id,
        "comparison_id": note.comparison_id,
        "reviewer": note.reviewer,
        "rating": note.rating,
        "text": note.text,
        **_who(note, *rec.IDENTITY_FIELDS),
        "created_at": note.created_at.isoformat(),
    }


def _review_record(review: Review, items: list[ReviewItem]) -> dict:
    return {
        "kind": "review",
        "id": review.id,
        "uid": review.uid,
        "name": review.name,
        "instructions": review.instructions,
        "ask_reason": review.ask_reason,
        "per_item": review.per_item,
        "variants": review.variants,
        "options": review.options,
        "items": [
            {
                "position": item.position,
                "row": item.row,
                "inputs": item.inputs,
                "values": item.values,
                "outputs": [item.output_first, item.output_second],
                "passed": item.passed,
            }
            for item in items
        ],
        **_who(review, "author", *rec.IDENTITY_FIELDS),
        "created_at": review.created_at.isoformat(),
    }


def _verdict_record(verdict: Verdict, position: int) -> dict:
    return {
        "kind": "verdict",
        "id": verdict.id,
        "uid": verdict.uid,
        "review_id": verdict.review_id,
        "item": position,
        "reviewer": verdict.reviewer,
        "choice": verdict.choice,
        "left": verdict.left,
        "reason": verdict.reason,
        **_who(verdict, *rec.IDENTITY_FIELDS),
        "created_at": verdict.created_at.isoformat(),
        "updated_at": verdict.updated_at.isoformat(),
    }


# Import: validated records, linked by the file's ids, written once ----------------------

ORDER = ("template_version", "run", "salience", "comparison", "note", "review", "verdict")  # parents first


def _fingerprint(data: dict) -> str:
    canonical = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class _Importer:
    """Writes validated records in one transaction, linking children through the file's ids.

    A new row keeps the record's uid (or, for a record without one, gets the first digits of its
    fingerprint) and stores the fingerprint of its content (and of its parents' fingerprints) in
    ``import_key``. A record is linked, not added again, when a row has its uid, its fingerprint,
    or (a file exported before uids existed) its creation time and the same fingerprint.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.rows: dict[tuple[str, object], tuple[int | str, str]] = {}  # (kind, file id) -> (row id, key)
        self.row_keys: dict[tuple[str, int], str | None] = {}  # (kind, row id) -> its export's fingerprint
        self.added = dict.fromkeys(EXPORT_KINDS, 0)
        self.present = dict.fromkeys(EXPORT_KINDS, 0)

    def add(self, records: list[tuple[int, rec.Record]]) -> ImportCounts:
        ordered = sorted(records, key=lambda item: ORDER.index(item[1].kind))
        self._check_links(ordered)
        for _number, record in ordered:
            getattr(self, f"_add_{record.kind}")(record)
        in_file = {record.kind for _, record in ordered}
        for kind in REVIEW_KINDS:  # counted only for files that have them (older files never do)
            if kind not in in_file:
                del self.added[kind], self.present[kind]
        return ImportCounts(self.added, self.present)

    def _check_links(self, records: list[tuple[int, rec.Record]]) -> None:
        """Every id a record points to is in the file (a comparison may also be saved here already)."""
        in_file = {(r.kind, r.id) for _, r in records}
        in_file |= {("comparison", r.canonical_id) for _, r in records if r.kind == "comparison"}
        wanted = {r.comparison_id for _, r in records if r.kind == "note" and r.comparison_id}
        saved = set(self.session.scalars(select(Comparison.id).where(Comparison.id.in_(wanted))))
        problems = []
        for number, record in records:
            for field_name, kind in _LINKS.get(record.kind, ()):
                target = getattr(record, field_name)
                if target is None or (kind, target) in in_file or (kind == "comparison" and target in saved):
                    continue
                problems.append(
                    f"Line {number} ({record.kind}, id {record.id}): {field_name}: {json.dumps(target)} "
                    f"should be the id of a {kind.replace('_', ' ')} in this file."
                )
        if problems:
            raise rec.BadRows(problems)

    def _parent(self, kind: str, file_id) -> tuple[int | str | None, str | None]:
        if file_id is None:
            return None, None
        return self.rows.get((kind, file_id), (file_id, file_id) if kind == "comparison" else (None, None))

    def _existing(self, kind: str, record: rec.Record, key: str) -> int | None:
        """The row that is this record: the same uid, else (files and copies from before uids) the
        same content: imported with this fingerprint, or made at the same time with the same content."""
        model = _MODELS[kind]
        if record.uid is not None:
            row_id = self.session.scalar(select(model.id).where(model.uid == record.uid))
            if row_id is not None:
                return row_id
        row_id = self.session.scalar(select(model.id).where(model.import_key == key).limit(1))
        if row_id is None and record.created_at is not None:
            for row in self.session.scalars(select(model).where(model.created_at == record.created_at)):
                if self._row_key(kind, row) == key:
                    return row.id
        return row_id

    def _row_key(self, kind: str, row) -> str | None:
        """The fingerprint this importer computes for the row's record in the workspace's own export
        (None for a row today's checks would refuse)."""
        if (kind, row.id) not in self.row_keys:
            if kind == "template_version":
                data, parents = _version_record(row, self.session.get(Template, row.template_id).name), {}
            elif kind == "run":
                data = _run_record(row)
                parents = {
                    "template_version_id": self._parent_row_key("template_version", row.template_version_id)
                }
            elif kind == "salience":
                data, parents = _salience_record(row), {"run_id": self._parent_row_key("run", row.run_id)}
            else:
                data = _note_record(row)
                parents = {
                    "run_id": self._parent_row_key("run", row.run_id),
                    "comparison_id": row.comparison_id,
                }
            try:
                exported = rec.parse_line(0, json.dumps(data, ensure_ascii=False))
            except ValueError:
                self.row_keys[(kind, row.id)] = None
            else:
                self.row_keys[(kind, row.id)] = _fingerprint({**rec.dumped(exported), **parents})
        return self.row_keys[(kind, row.id)]

    def _parent_row_key(self, kind: str, row_id: int | None) -> str | None:
        parent = None if row_id is None else self.session.get(_MODELS[kind], row_id)
        return None if parent is None else self._row_key(kind, parent)

    def _store(self, kind: str, record: rec.Record, key: str, make) -> int:
        """Link to the row that is this record, or add the row that ``make()`` builds."""
        row_id = self._existing(kind, record, key)
        if row_id is None:
            row = make()
            row.import_key = key
            row.uid = record.uid or key[:UID_LENGTH]
            if record.created_at is not None:
                row.created_at = record.created_at
            self.session.add(row)
            self.session.flush()
            row_id = row.id
            self.added[kind] += 1
        else:
            self.present[kind] += 1
        self.rows[(kind, record.id)] = (row_id, key)
        return row_id

    def _add_template_version(self, record: rec.VersionRecord) -> None:
        key = _fingerprint(rec.dumped(record))
        self._store(
            "template_version",
            record,
            key,
            lambda: TemplateVersion(
                template_id=_template(self.session, clean_name(record.template, "template name")).id,
                text=record.text,
                variables=dict(record.variables),
                author=record.author,
                **_identity(record),
            ),
        )

    def _add_run(self, record: rec.RunRecord) -> None:
        version_id, version_key = self._parent("template_version", record.template_version_id)
        key = _fingerprint({**rec.dumped(record), "template_version_id": version_key})
        self._store(
            "run",
            record,
            key,
            lambda: Run(
                template_version_id=version_id,
                prompt=record.prompt,
                variables=dict(record.variables),
                model=record.model,
                precision=record.precision,
                settings=record.settings.model_dump(mode="json"),
                output=record.output,
                stop_reason=record.stop_reason,
                tokens=record.tokens,
                seconds=record.seconds,
                first_token_seconds=record.first_token_seconds,
                author=record.author,
                **_identity(record),
            ),
        )

    def _add_salience(self, record: rec.SalienceRecordIn) -> None:
        run_id, run_key = self._parent("run", record.run_id)
        key = _fingerprint({**rec.dumped(record), "run_id": run_key})
        span = record.span
        self._store(
            "salience",
            record,
            key,
            lambda: SalienceRecord(
                run_id=run_id,
                model=record.model,
                precision=record.precision,
                prompt=record.prompt,
                target=record.target,
                span_start=span[0] if span else None,
                span_end=span[1] if span else None,
                target_text=str(record.result.get("target_text", "")),
                result=result_json(result_from_json(record.result), record.model, record.precision),
            ),
        )

    def _add_comparison(self, record: rec.ComparisonRecord) -> None:
        snapshot_id, data = encode({k: v for k, v in record.state.items() if k != "version"})
        if self.session.get(Comparison, snapshot_id) is None:
            created = {"created_at": record.created_at} if record.created_at else {}
            self.session.add(Comparison(id=snapshot_id, state=data.decode(), **created))
            self.session.flush()
            self.added["comparison"] += 1
        else:
            self.present["comparison"] += 1
        self.rows[("comparison", snapshot_id)] = (snapshot_id, snapshot_id)
        if record.id:  # notes in the file point at the id it gave
            self.rows[("comparison", record.id)] = (snapshot_id, snapshot_id)

    def _add_note(self, record: rec.NoteRecord) -> None:
        run_id, run_key = self._parent("run", record.run_id)
        comparison_id, _ = self._parent("comparison", record.comparison_id)
        key = _fingerprint({**rec.dumped(record), "run_id": run_key, "comparison_id": comparison_id})
        self._store(
            "note",
            record,
            key,
            lambda: Note(
                reviewer=clean_name(record.reviewer, "reviewer name", MAX_NAME),
                rating=record.rating,
                text=record.text,
                run_id=run_id,
                comparison_id=comparison_id,
                **_identity(record),
            ),
        )

    def _add_review(self, record: rec.ReviewRecord) -> None:
        """A review is the same review when it has the same uid (a file without uids: the same
        content, whose fingerprint gives the uid)."""
        key = _fingerprint(rec.dumped(record))
        uid = record.uid or key[:UID_LENGTH]
        row_id = self.session.scalar(select(Review.id).where(Review.uid == uid))
        if row_id is not None:
            self.present["review"] += 1
        else:
            review = Review(
                uid=uid,
                name=record.name,
                instructions=record.instructions,
                ask_reason=record.ask_reason,
                per_item=record.per_item,
                variants=[variant.model_dump() for variant in record.variants],
                options=dict(record.options),
                author=record.author,
                **_identity(record),
            )
            if record.created_at is not None:
                review.created_at = record.created_at
            self.session.add(review)
            self.session.flush()
            for item in record.items:
                self.session.add(
                    ReviewItem(
                        review_id=review.id,
                        position=item.position,
                        row=item.row,
                        inputs=dict(item.inputs),
                        values=[dict(v) for v in item.values],
                        output_first=item.outputs[0],
                        output_second=item.outputs[1],
                        passed=list(item.passed),
                    )
                )
            self.session.flush()
            row_id = review.id
            self.added["review"] += 1
        self.rows[("review", record.id)] = (row_id, uid)

    def _add_verdict(self, record: rec.VerdictRecord) -> None:
        """A verdict already here (its uid, or this reviewer's answer on the item) is kept as is."""
        from salience.evaluation.review_stats import reviewer_key

        review_id, _ = self.rows[("review", record.review_id)]
        item_id = self.session.scalar(
            select(ReviewItem.id).where(ReviewItem.review_id == review_id, ReviewItem.position == record.item)
        )
        if item_id is None:
            raise rec.BadRows(
                [f"Verdict {record.id}: item: the review has no item at position {record.item}."]
            )
        key = reviewer_key(record.reviewer)
        found = self.session.scalar(
            select(Verdict.id).where(
                or_(
                    Verdict.uid == (record.uid or ""),
                    and_(Verdict.item_id == item_id, Verdict.reviewer_key == key),
                )
            )
        )
        if found is not None:
            self.present["verdict"] += 1
            return
        key_fields = {**rec.dumped(record), "review_id": review_id}
        verdict = Verdict(
            uid=record.uid or _fingerprint(key_fields)[:UID_LENGTH],
            review_id=review_id,
            item_id=item_id,
            reviewer=clean_name(record.reviewer, "reviewer name", MAX_NAME),
            reviewer_key=key,
            choice=record.choice,
            left=record.left,
            reason=record.reason,
            **_identity(record),
        )
        if record.created_at is not None:
            verdict.created_at = record.created_at
        if record.updated_at is not None:
            verdict.updated_at = record.updated_at
        self.session.add(verdict)
        self.session.flush()
        self.added["verdict"] += 1


def _identity(record: rec.Record) -> dict:
    """The author's user id and e-mail a record carries (kept as exported)."""
    return {field_name: getattr(record, field_name) for field_name in rec.IDENTITY_FIELDS}


_MODELS = {"template_version": TemplateVersion, "run": Run, "salience": SalienceRecord, "note": Note}
_LINKS = {
    "run": (("template_version_id", "template_version"),),
    "salience": (("run_id", "run"),),
    "note": (("run_id", "run"), ("comparison_id", "comparison")),
    "verdict": (("review_id", "review"),),
}
