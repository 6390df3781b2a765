"""Tables of the workspace (SQLAlchemy 2 declarative). Changes need an Alembic migration."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
IMPORTED = "fingerprint of an imported row's content: importing it again adds nothing (store.import_jsonl)"
AUTHOR_SUB = "who made the record: the sign-in's stable user id (OIDC sub); None in personal mode"
AUTHOR_EMAIL = "who made the record: the sign-in's e-mail; None in personal mode"
MAX_SUB = 255  # OIDC: a sub is at most 255 ASCII characters
MAX_EMAIL = 320
IDENTITY = "the record's own id, given when it is born and kept by export and import (32 hex digits)"
UID_LENGTH = 32
_ESCAPED = "\ue000b64:"  # a private-use marker: text that PostgreSQL could not store as is


def now() -> datetime:
    return datetime.now(UTC)


def new_uid() -> str:
    """A globally unique id for a new record (a random UUID, 32 hex digits)."""
    return uuid.uuid4().hex


def name_key(name: str) -> str:
    """What a template's name is unique by: its SHA-256 (a name of any length fits an index)."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def _name_key_default(context) -> str:
    return name_key(context.get_current_parameters()["name"])


def _uid_column() -> Mapped[str]:
    return mapped_column(String(UID_LENGTH), default=new_uid, unique=True, doc=IDENTITY)


def _sub_column() -> Mapped[str | None]:
    return mapped_column(String(MAX_SUB), nullable=True, doc=AUTHOR_SUB)


def _email_column() -> Mapped[str | None]:
    return mapped_column(String(MAX_EMAIL), nullable=True, doc=AUTHOR_EMAIL)


def _author_column() -> Mapped[str | None]:
    return mapped_column(String(200), nullable=True)  # the display name, as shown when it was made


class ExactText(TypeDecorator):
    """Text that round-trips exactly on every backend.

    PostgreSQL refuses NUL characters in text; such values (and any that start with
    the marker) are stored base64-encoded behind a private-use marker there.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None or dialect.name != "postgresql":
            return value
        if "\x00" in value or value.startswith(_ESCAPED):
            return _ESCAPED + base64.b64encode(value.encode("utf-8")).decode("ascii")
        return value

    def process_result_value(self, value, dialect):
        if value is None or dialect.name != "postgresql" or not value.startswith(_ESCAPED):
            return value
        return base64.b64decode(value[len(_ESCAPED) :]).decode("utf-8")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps (SQLite stores them naive; they come back as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Template(Base):
    """A named line of template versions (named after the sample it started from, or by the user)."""

    __tablename__ = "templates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(ExactText)  # kept whole, however long
    name_key: Mapped[str] = mapped_column(String(64), unique=True, default=_name_key_default)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class TemplateVersion(Base):
    __tablename__ = "template_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(ExactText)
    variables: Mapped[dict] = mapped_column(JSON, default=dict)
    author: Mapped[str | None] = mapped_column(String(200), nullable=True)
    author_sub: Mapped[str | None] = _sub_column()
    author_email: Mapped[str | None] = _email_column()
    browser_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    import_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True, doc=IMPORTED)
    uid: Mapped[str] = _uid_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)


class Run(Base):
    """One generation: the rendered prompt, model, settings, output and timing."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("template_versions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    prompt: Mapped[str] = mapped_column(ExactText)
    variables: Mapped[dict] = mapped_column(JSON, default=dict)
    model: Mapped[str] = mapped_column(String(500))
    precision: Mapped[str] = mapped_column(String(20))
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    output: Mapped[str] = mapped_column(ExactText)
    stop_reason: Mapped[str] = mapped_column(String(40), default="")
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(default=0.0)
    first_token_seconds: Mapped[float] = mapped_column(default=0.0)
    author: Mapped[str | None] = _author_column()
    author_sub: Mapped[str | None] = _sub_column()
    author_email: Mapped[str | None] = _email_column()
    browser_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    import_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True, doc=IMPORTED)
    uid: Mapped[str] = _uid_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)


class SalienceRecord(Base):
    """Scores of one salience computation: prompt + target, the explained span, per-method scores."""

    __tablename__ = "salience_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), nullable=True, index=True
    )
    model: Mapped[str] = mapped_column(String(500))
    precision: Mapped[str] = mapped_column(String(20))
    prompt: Mapped[str] = mapped_column(ExactText)
    target: Mapped[str] = mapped_column(ExactText)
    span_start: Mapped[int | None] = mapped_column(Integer, nullable=True)  # characters of prompt+target
    span_end: Mapped[int | None] = mapped_column(Integer, nullable=True)
    target_text: Mapped[str] = mapped_column(ExactText)
    result: Mapped[dict] = mapped_column(JSON)  # SalienceResult.to_json()
    seconds: Mapped[float] = mapped_column(default=0.0)
    import_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True, doc=IMPORTED)
    uid: Mapped[str] = _uid_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)


class Comparison(Base):
    """A saved comparison (a permalink's state)."""

    __tablename__ = "comparisons"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(ExactText)  # canonical JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Note(Base):
    """A reviewer's rating (+1, -1 or none) and free text on a run or a comparison."""

    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), nullable=True, index=True
    )
    comparison_id: Mapped[str | None] = mapped_column(
        ForeignKey("comparisons.id", ondelete="CASCADE"), nullable=True, index=True
    )
    reviewer: Mapped[str] = mapped_column(String(200))
    author_sub: Mapped[str | None] = _sub_column()
    author_email: Mapped[str | None] = _email_column()
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    text: Mapped[str] = mapped_column(ExactText, default="")
    import_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True, doc=IMPORTED)
    uid: Mapped[str] = _uid_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)


class Browser(Base):
    """What one browser left: its reviewer name and its last app state (restored on return)."""

    __tablename__ = "browsers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reviewer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    state: Mapped[str | None] = mapped_column(ExactText, nullable=True)  # JSON
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Evaluation(Base):
    """A prompt evaluation: variants, data table and checks (``plan``), its settings and progress."""

    __tablename__ = "evaluations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = _uid_column()
    name: Mapped[str] = mapped_column(ExactText)
    plan: Mapped[str] = mapped_column(ExactText)  # JSON: salience.evaluation.runs.plan_to_json
    options: Mapped[dict] = mapped_column(JSON, default=dict)  # model, settings, target, batch size
    status: Mapped[str] = mapped_column(String(20), default="running")  # running, cancelled, finished
    total: Mapped[int] = mapped_column(Integer, default=0)
    author: Mapped[str | None] = _author_column()
    author_sub: Mapped[str | None] = _sub_column()
    author_email: Mapped[str | None] = _email_column()
    browser_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class EvaluationCell(Base):
    """One finished (row, variant) of an evaluation, committed as soon as it is done."""

    __tablename__ = "evaluation_cells"
    __table_args__ = (UniqueConstraint("evaluation_id", "row", "variant", name="uq_evaluation_cells_cell"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    row: Mapped[int] = mapped_column(Integer)
    variant: Mapped[int] = mapped_column(Integer)
    result: Mapped[dict] = mapped_column(JSON)  # salience.evaluation.runs.CellResult.to_json
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


Index("ix_runs_model", Run.model)


class Review(Base):
    """A blind side-by-side review of two variants' outputs; the outputs are kept in its items, so
    it stays as it was shown when its evaluation is rerun or deleted."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = _uid_column()
    name: Mapped[str] = mapped_column(ExactText)
    instructions: Mapped[str] = mapped_column(ExactText, default="")
    ask_reason: Mapped[bool] = mapped_column(Boolean, default=False)
    per_item: Mapped[int] = mapped_column(Integer, default=1)  # reviewers wanted on each item
    evaluation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # no link: it may go
    variants: Mapped[list] = mapped_column(JSON)  # [{"name", "template"}, {"name", "template"}]
    options: Mapped[dict] = mapped_column(JSON, default=dict)  # the evaluation's generation settings
    author: Mapped[str | None] = _author_column()
    author_sub: Mapped[str | None] = _sub_column()
    author_email: Mapped[str | None] = _email_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)


class ReviewItem(Base):
    """One pair of outputs to judge: the inputs, each variant's values and output, its checks."""

    __tablename__ = "review_items"
    __table_args__ = (UniqueConstraint("review_id", "position", name="uq_review_items_position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # the order reviewers see items in
    row: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the evaluation's row (0-based)
    inputs: Mapped[dict] = mapped_column(JSON, default=dict)  # what the reviewer reads
    values: Mapped[list] = mapped_column(JSON, default=list)  # each variant's variable values
    output_first: Mapped[str] = mapped_column(ExactText)
    output_second: Mapped[str] = mapped_column(ExactText)
    passed: Mapped[list] = mapped_column(JSON, default=list)  # each output's automatic checks


class Verdict(Base):
    """A reviewer's answer on an item, committed as it is given; one per reviewer and item."""

    __tablename__ = "verdicts"
    __table_args__ = (UniqueConstraint("item_id", "reviewer_key", name="uq_verdicts_item_reviewer"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = _uid_column()
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id", ondelete="CASCADE"), index=True)
    reviewer: Mapped[str] = mapped_column(String(200))
    reviewer_key: Mapped[str] = mapped_column(String(200))  # salience.evaluation.review_stats.reviewer_key
    author_sub: Mapped[str | None] = _sub_column()
    author_email: Mapped[str | None] = _email_column()
    choice: Mapped[str] = mapped_column(String(10))  # first, second, same, neither
    left: Mapped[int] = mapped_column(Integer)  # the variant shown on the left
    reason: Mapped[str] = mapped_column(ExactText, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
