"""The workspace API: every write is one transaction; nothing is updated in place except a
browser's last state, so concurrent writers never lose each other's rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import Engine, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from salience.errors import InputError
from salience.snapshots import SnapshotNotFound, check_id, decode, encode
from salience.types import Generation, GenerationSettings, SalienceResult
from workspace.database import open_database
from workspace.schema import Browser, Comparison, Note, Run, SalienceRecord, Template, TemplateVersion, now

MAX_NAME = 200
EXPORT_KINDS = ("template_version", "run", "salience", "note", "comparison")


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


@dataclass(frozen=True)
class NoteRow:
    id: int
    reviewer: str
    rating: int | None
    text: str
    created_at: datetime
    run_id: int | None = None
    comparison_id: str | None = None


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


def settings_json(settings: GenerationSettings) -> dict:
    return {
        "max_new_tokens": settings.max_new_tokens,
        "stop_sequences": list(settings.stop_sequences),
        "temperature": settings.temperature,
        "top_k": settings.top_k,
        "top_p": settings.top_p,
        "seed": settings.seed,
        "chat_template": settings.chat_template,
    }


def result_from_json(data: dict) -> SalienceResult:
    """Rebuild a SalienceResult from ``SalienceResult.to_json()``."""
    methods = {
        key: np.asarray(value, dtype=np.float32)
        for key, value in data.items()
        if isinstance(value, list) and key not in ("tokens", "offsets", "target_token_span")
    }
    return SalienceResult(
        text=data["text"],
        prompt_length=int(data["prompt_length"]),
        tokens=tuple(data["tokens"]),
        offsets=tuple((int(a), int(b)) for a, b in data["offsets"]),
        target_token_span=(int(data["target_token_span"][0]), int(data["target_token_span"][1])),
        scores=methods,
        target_log_prob=float(data.get("target_log_prob") or 0.0),
        seconds=float(data.get("seconds") or 0.0),
        diagnostics=data.get("diagnostics") if isinstance(data.get("diagnostics"), dict) else {},
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _name(text: str | None, what: str = "name") -> str:
    cleaned = " ".join((text or "").split())
    if not cleaned:
        raise InputError(f"The {what} is empty.")
    return cleaned[:MAX_NAME]


class Workspace:
    """All reads and writes of the workspace. Thread-safe: each call has its own session."""

    def __init__(self, engine: Engine, url: str = "", notice: str = "") -> None:
        self.engine = engine
        self.url = url
        self.notice = notice
        self._writer = engine.execution_options(sqlite_immediate=True)

    @classmethod
    def open(cls, url: str | None = None) -> Workspace:
        opened = open_database(url)
        return cls(opened.engine, opened.url, opened.notice)

    def close(self) -> None:
        self.engine.dispose()

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
    ) -> int:
        """Add a version unless it equals the template's newest one; returns the version id."""
        name = _name(name, "template name")
        with self._write() as session, session.begin():
            template = session.scalar(select(Template).where(Template.name == name))
            if template is None:
                template = Template(name=name)
                session.add(template)
                session.flush()
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
                author=author,
                browser_id=browser_id,
            )
            session.add(version)
            session.flush()
            return version.id

    def template_names(self) -> list[str]:
        with self._read() as session:
            return list(session.scalars(select(Template.name).order_by(Template.name)))

    def versions(self, name: str) -> list[VersionRow]:
        """Versions of a template, newest first."""
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
        with self._read() as session:
            row = session.execute(
                select(TemplateVersion, Template.name).join(Template).where(TemplateVersion.id == version_id)
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
    ) -> int:
        with self._write() as session, session.begin():
            run = Run(
                template_version_id=version_id,
                prompt=generation.prompt,
                variables=dict(variables or {}),
                model=model,
                precision=precision,
                settings=settings_json(settings),
                output=generation.text,
                stop_reason=generation.stop_reason,
                tokens=len(generation.token_ids),
                seconds=float(generation.seconds),
                first_token_seconds=float(generation.first_token_seconds),
                browser_id=browser_id,
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
                result=result.to_json(),
                seconds=float(result.seconds),
            )
            session.add(record)
            session.flush()
            return record.id

    def salience_for_run(self, run_id: int) -> list[StoredSalience]:
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
                    result_from_json(r.result),
                    r.model,
                    r.created_at,
                )
                for r in records
            ]

    def _run_query(self, terms: RunFilter):
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
            pattern = _like(terms.text)
            conditions.append(
                or_(Run.output.ilike(pattern, escape="\\"), Run.prompt.ilike(pattern, escape="\\"))
            )
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
            conditions.append(Run.id.in_(terms.ids))
        if conditions:
            query = query.where(and_(*conditions))
        return query.order_by(Run.id.desc())

    def runs(self, terms: RunFilter | None = None) -> list[RunRow]:
        """Runs matching the filter, newest first."""
        terms = terms or RunFilter()
        with self._read() as session:
            rows = session.execute(
                self._run_query(terms).limit(None if terms.variable_value else terms.limit)
            )
            out = []
            for run, template, rating, notes in rows:
                if terms.variable_value and not any(
                    terms.variable_value.lower() in str(value).lower()
                    for value in (run.variables or {}).values()
                ):
                    continue
                out.append(
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
                    )
                )
                if len(out) >= terms.limit:
                    break
            return out

    def run(self, run_id: int) -> RunRow:
        found = self.runs(RunFilter(ids=[run_id], limit=1))
        if not found:
            raise InputError(f"There is no run {run_id}.")
        return found[0]

    def models(self) -> list[str]:
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
    ) -> int:
        """A reviewer's thumbs (+1/−1) and/or note on a run or a comparison."""
        reviewer = _name(reviewer, "reviewer name")
        if rating not in (None, 1, -1):
            raise InputError("A rating is thumbs up (+1) or thumbs down (−1).")
        if (run_id is None) == (comparison_id is None):
            raise InputError("A note belongs to one run or one comparison.")
        if not text.strip() and rating is None:
            raise InputError("Write a note or give a thumbs up or down.")
        with self._write() as session, session.begin():
            if run_id is not None and session.get(Run, run_id) is None:
                raise InputError(f"There is no run {run_id}.")
            if comparison_id is not None and session.get(Comparison, comparison_id) is None:
                raise InputError(f"There is no saved comparison {comparison_id}.")
            note = Note(
                reviewer=reviewer, text=text, rating=rating, run_id=run_id, comparison_id=comparison_id
            )
            session.add(note)
            session.flush()
            return note.id

    def notes(self, run_id: int | None = None, comparison_id: str | None = None) -> list[NoteRow]:
        with self._read() as session:
            query = select(Note).order_by(Note.id)
            if run_id is not None:
                query = query.where(Note.run_id == run_id)
            if comparison_id is not None:
                query = query.where(Note.comparison_id == comparison_id)
            return [
                NoteRow(n.id, n.reviewer, n.rating, n.text, n.created_at, n.run_id, n.comparison_id)
                for n in session.scalars(query)
            ]

    def noted_runs(self) -> list[dict]:
        """One row per note on a run, with the run it is about (for the team's CSV)."""
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
        with self._write() as session, session.begin():
            browser = session.get(Browser, browser_id) or Browser(id=browser_id)
            browser.reviewer = " ".join(name.split())[:MAX_NAME] or None
            browser.updated_at = now()
            session.add(browser)

    def reviewer(self, browser_id: str) -> str | None:
        with self._read() as session:
            browser = session.get(Browser, browser_id)
            return browser.reviewer if browser else None

    # A browser's last state ------------------------------------------------------------

    def save_state(self, browser_id: str, state: dict) -> None:
        data = json.dumps(state, ensure_ascii=False, sort_keys=True)
        with self._write() as session, session.begin():
            browser = session.get(Browser, browser_id) or Browser(id=browser_id)
            browser.state = data
            browser.updated_at = now()
            session.add(browser)

    def load_state(self, browser_id: str) -> dict | None:
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
        snapshot_id, data = encode(snapshot)
        with self._write() as session, session.begin():
            if session.get(Comparison, snapshot_id) is None:
                session.add(Comparison(id=snapshot_id, state=data.decode()))
        return snapshot_id

    def load(self, snapshot_id: str) -> dict:
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
        """Saved comparisons, newest first, with their variant names and note counts."""
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
        """The workspace (or the chosen runs) as JSON-ready records, one kind per ``kind`` field."""
        wanted = set(run_ids) if run_ids is not None else None
        with self._read() as session:
            runs = list(session.scalars(select(Run).order_by(Run.id)))
            if notes_only:
                noted = set(session.scalars(select(Note.run_id).where(Note.run_id.is_not(None))))
                runs = [r for r in runs if r.id in noted]
            if wanted is not None:
                runs = [r for r in runs if r.id in wanted]
            run_ids_kept = {r.id for r in runs}
            version_ids = {r.template_version_id for r in runs if r.template_version_id}
            selection = wanted is not None or notes_only
            versions = session.execute(
                select(TemplateVersion, Template.name).join(Template).order_by(TemplateVersion.id)
            )
            for version, name in versions:
                if selection and version.id not in version_ids:
                    continue
                yield {
                    "kind": "template_version",
                    "id": version.id,
                    "template": name,
                    "text": version.text,
                    "variables": version.variables,
                    "author": version.author,
                    "created_at": version.created_at.isoformat(),
                }
            for run in runs:
                yield {
                    "kind": "run",
                    "id": run.id,
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
                    "created_at": run.created_at.isoformat(),
                }
            for record in session.scalars(select(SalienceRecord).order_by(SalienceRecord.id)):
                if selection and record.run_id not in run_ids_kept:
                    continue
                yield {
                    "kind": "salience",
                    "id": record.id,
                    "run_id": record.run_id,
                    "model": record.model,
                    "precision": record.precision,
                    "prompt": record.prompt,
                    "target": record.target,
                    "span": [record.span_start, record.span_end] if record.span_start is not None else None,
                    "result": record.result,
                    "created_at": record.created_at.isoformat(),
                }
            comparison_ids = set()
            if not selection:
                for comparison in session.scalars(select(Comparison).order_by(Comparison.created_at)):
                    comparison_ids.add(comparison.id)
                    yield {
                        "kind": "comparison",
                        "id": comparison.id,
                        "state": json.loads(comparison.state),
                        "created_at": comparison.created_at.isoformat(),
                    }
            for note in session.scalars(select(Note).order_by(Note.id)):
                if note.run_id is not None and note.run_id not in run_ids_kept:
                    continue
                if note.comparison_id is not None and note.comparison_id not in comparison_ids:
                    continue
                yield {
                    "kind": "note",
                    "id": note.id,
                    "run_id": note.run_id,
                    "comparison_id": note.comparison_id,
                    "reviewer": note.reviewer,
                    "rating": note.rating,
                    "text": note.text,
                    "created_at": note.created_at.isoformat(),
                }

    def export_jsonl(self, run_ids: Iterable[int] | None = None, notes_only: bool = False) -> str:
        return "".join(
            json.dumps(record, ensure_ascii=False) + "\n"
            for record in self.export_records(run_ids, notes_only)
        )

    def import_jsonl(self, text: str | bytes) -> dict[str, int]:
        """Add the records of an export (new ids; links between them kept). All or nothing."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError("The file is not UTF-8 text; export it again as JSONL.") from None
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"Line {number} is not JSON ({error.msg}).") from None
            if not isinstance(record, dict) or record.get("kind") not in EXPORT_KINDS:
                raise InputError(
                    f"Line {number} is not a workspace record (its 'kind' is missing or unknown)."
                )
            records.append((number, record))
        counts = dict.fromkeys(EXPORT_KINDS, 0)
        version_ids: dict[int, int] = {}
        run_ids: dict[int, int] = {}
        with self._write() as session, session.begin():
            for number, record in records:
                try:
                    self._import_one(session, record, version_ids, run_ids)
                except (KeyError, TypeError, ValueError) as error:
                    raise InputError(
                        f"Line {number} ({record['kind']}) is missing or has a bad field: {error}."
                    ) from None
                counts[record["kind"]] += 1
        return counts

    def _import_one(self, session: Session, record: dict, version_ids: dict, run_ids: dict) -> None:
        kind = record["kind"]
        created = datetime.fromisoformat(record["created_at"]) if record.get("created_at") else now()
        if kind == "template_version":
            name = _name(record["template"], "template name")
            template = session.scalar(select(Template).where(Template.name == name))
            if template is None:
                template = Template(name=name)
                session.add(template)
                session.flush()
            version = TemplateVersion(
                template_id=template.id,
                text=str(record["text"]),
                variables=dict(record.get("variables") or {}),
                author=record.get("author"),
                created_at=created,
            )
            session.add(version)
            session.flush()
            version_ids[int(record["id"])] = version.id
        elif kind == "run":
            run = Run(
                template_version_id=version_ids.get(record.get("template_version_id")),
                prompt=str(record["prompt"]),
                variables=dict(record.get("variables") or {}),
                model=str(record["model"]),
                precision=str(record.get("precision") or "bfloat16"),
                settings=dict(record.get("settings") or {}),
                output=str(record["output"]),
                stop_reason=str(record.get("stop_reason") or ""),
                tokens=int(record.get("tokens") or 0),
                seconds=float(record.get("seconds") or 0.0),
                first_token_seconds=float(record.get("first_token_seconds") or 0.0),
                created_at=created,
            )
            session.add(run)
            session.flush()
            run_ids[int(record["id"])] = run.id
        elif kind == "salience":
            span = record.get("span")
            result = dict(record["result"])
            result_from_json(result)  # validates the shape
            session.add(
                SalienceRecord(
                    run_id=run_ids.get(record.get("run_id")),
                    model=str(record["model"]),
                    precision=str(record.get("precision") or "bfloat16"),
                    prompt=str(record["prompt"]),
                    target=str(record["target"]),
                    span_start=int(span[0]) if span else None,
                    span_end=int(span[1]) if span else None,
                    target_text=str(result.get("target_text", "")),
                    result=result,
                    created_at=created,
                )
            )
        elif kind == "comparison":
            snapshot_id, data = encode({k: v for k, v in dict(record["state"]).items() if k != "version"})
            if session.get(Comparison, snapshot_id) is None:
                session.add(Comparison(id=snapshot_id, state=data.decode(), created_at=created))
                session.flush()
        elif kind == "note":
            run_id = run_ids.get(record.get("run_id"))
            comparison_id = record.get("comparison_id")
            if comparison_id is not None and session.get(Comparison, comparison_id) is None:
                comparison_id = None
            if run_id is None and comparison_id is None:
                return  # its run or comparison is not in this file
            session.add(
                Note(
                    reviewer=_name(record["reviewer"], "reviewer name"),
                    rating=record.get("rating"),
                    text=str(record.get("text") or ""),
                    run_id=run_id,
                    comparison_id=comparison_id if run_id is None else None,
                    created_at=created,
                )
            )
