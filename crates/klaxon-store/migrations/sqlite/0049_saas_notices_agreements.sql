-- SaaS mode: notice records (service-agreement.md §20, SVC-310 … SVC-316), agreement document
-- versions (SVC-030/031) and acceptance records (SVC-032 … SVC-038); docs/saas.md. All three
-- are operator records (SVC-180, SVC-312): a purge keeps them, an export leaves them out.
-- Notices and acceptances are immutable like the ledger; a published version may only be
-- retracted. Keep in step with ../postgres/0049_saas_notices_agreements.sql.

-- One row per sending: one channel, one recipient. account_id 0 = every tenant (an
-- announcement); member_id is the inbox owner of an in-app notice (0 otherwise).
CREATE TABLE saas_notices (
    notice_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id          INTEGER NOT NULL,
    member_id           INTEGER NOT NULL DEFAULT 0,
    category            TEXT    NOT NULL,
    critical            INTEGER NOT NULL DEFAULT 0,
    template_id         TEXT    NOT NULL,
    template_version    TEXT    NOT NULL,
    language            TEXT    NOT NULL,
    subject             TEXT    NOT NULL,
    content             TEXT    NOT NULL,
    content_sha256      TEXT    NOT NULL,
    channel             TEXT    NOT NULL,
    recipient           TEXT    NOT NULL DEFAULT '',
    sent_at             INTEGER NOT NULL,
    deemed_delivered_on TEXT    NOT NULL,
    provider_message_id TEXT    NOT NULL DEFAULT '',
    status              TEXT    NOT NULL,
    status_detail       TEXT    NOT NULL DEFAULT '',
    related             TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX saas_notices_account ON saas_notices (account_id, sent_at);
CREATE INDEX saas_notices_related ON saas_notices (related);

CREATE TRIGGER saas_notices_no_update BEFORE UPDATE ON saas_notices
BEGIN
    SELECT RAISE(ABORT, 'saas_notices is append-only (SVC-312)');
END;
CREATE TRIGGER saas_notices_no_delete BEFORE DELETE ON saas_notices
BEGIN
    SELECT RAISE(ABORT, 'saas_notices is append-only (SVC-312)');
END;

-- One published version of one document type in its canonical language.
CREATE TABLE saas_documents (
    version_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_type      TEXT    NOT NULL,
    level         TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    language      TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    body_sha256   TEXT    NOT NULL,
    summary       TEXT    NOT NULL,
    material      INTEGER NOT NULL,
    justification TEXT    NOT NULL DEFAULT '',
    published_at  INTEGER NOT NULL,
    effective_at  INTEGER NOT NULL,
    status        TEXT    NOT NULL,
    retracted_at  INTEGER NOT NULL DEFAULT 0,
    author        TEXT    NOT NULL,
    UNIQUE (doc_type, version, language)
);

-- SVC-030: a published version is immutable; the one change allowed is its retraction.
CREATE TRIGGER saas_documents_immutable BEFORE UPDATE ON saas_documents
WHEN OLD.status <> 'published' OR NEW.status <> 'retracted'
    OR NEW.doc_type <> OLD.doc_type OR NEW.level <> OLD.level OR NEW.version <> OLD.version
    OR NEW.language <> OLD.language OR NEW.body <> OLD.body
    OR NEW.body_sha256 <> OLD.body_sha256 OR NEW.summary <> OLD.summary
    OR NEW.material <> OLD.material OR NEW.justification <> OLD.justification
    OR NEW.published_at <> OLD.published_at OR NEW.effective_at <> OLD.effective_at
    OR NEW.author <> OLD.author
BEGIN
    SELECT RAISE(ABORT, 'a published document version is immutable; only its retraction is recorded (SVC-030)');
END;
CREATE TRIGGER saas_documents_no_delete BEFORE DELETE ON saas_documents
BEGIN
    SELECT RAISE(ABORT, 'document versions are never deleted (SVC-030)');
END;

-- One decision (acceptance or refusal) per tenant, version and person: person_key is 0
-- for a tenant-level document, the member id for a person-level one. ends_at: when a
-- refusal ends the service (SVC-038), 0 for an acceptance.
CREATE TABLE saas_acceptances (
    acceptance_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      INTEGER NOT NULL,
    version_id      INTEGER NOT NULL,
    person_key      INTEGER NOT NULL,
    member_id       INTEGER NOT NULL,
    login           TEXT    NOT NULL,
    role            TEXT    NOT NULL,
    doc_type        TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    language        TEXT    NOT NULL,
    content_sha256  TEXT    NOT NULL,
    decision        TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    decided_at      INTEGER NOT NULL,
    client_ip       TEXT    NOT NULL DEFAULT '',
    user_agent      TEXT    NOT NULL DEFAULT '',
    client_type     TEXT    NOT NULL DEFAULT '',
    request_id      TEXT    NOT NULL DEFAULT '',
    event_type      TEXT    NOT NULL DEFAULT '',
    evidence        TEXT    NOT NULL DEFAULT '',
    ends_at         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, version_id, person_key)
);

CREATE TRIGGER saas_acceptances_no_update BEFORE UPDATE ON saas_acceptances
BEGIN
    SELECT RAISE(ABORT, 'saas_acceptances is append-only (SVC-032)');
END;
CREATE TRIGGER saas_acceptances_no_delete BEFORE DELETE ON saas_acceptances
BEGIN
    SELECT RAISE(ABORT, 'saas_acceptances is append-only (SVC-032)');
END;
