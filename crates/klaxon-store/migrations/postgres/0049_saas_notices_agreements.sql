-- SaaS mode: notice records (service-agreement.md §20, SVC-310 … SVC-316), agreement document
-- versions (SVC-030/031) and acceptance records (SVC-032 … SVC-038); docs/saas.md. All three
-- are operator records (SVC-180, SVC-312): a purge keeps them, an export leaves them out.
-- Notices and acceptances are immutable like the ledger; a published version may only be
-- retracted. Keep in step with ../sqlite/0049_saas_notices_agreements.sql.

-- One row per sending: one channel, one recipient. account_id 0 = every tenant (an
-- announcement); member_id is the inbox owner of an in-app notice (0 otherwise).
CREATE TABLE saas_notices (
    notice_id           BIGSERIAL PRIMARY KEY,
    account_id          BIGINT  NOT NULL,
    member_id           BIGINT  NOT NULL DEFAULT 0,
    category            TEXT    NOT NULL,
    critical            BIGINT  NOT NULL DEFAULT 0,
    template_id         TEXT    NOT NULL,
    template_version    TEXT    NOT NULL,
    language            TEXT    NOT NULL,
    subject             TEXT    NOT NULL,
    content             TEXT    NOT NULL,
    content_sha256      TEXT    NOT NULL,
    channel             TEXT    NOT NULL,
    recipient           TEXT    NOT NULL DEFAULT '',
    sent_at             BIGINT  NOT NULL,
    deemed_delivered_on TEXT    NOT NULL,
    provider_message_id TEXT    NOT NULL DEFAULT '',
    status              TEXT    NOT NULL,
    status_detail       TEXT    NOT NULL DEFAULT '',
    related             TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX saas_notices_account ON saas_notices (account_id, sent_at);
CREATE INDEX saas_notices_related ON saas_notices (related);

CREATE FUNCTION saas_notices_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'saas_notices is append-only (SVC-312)';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER saas_notices_no_update BEFORE UPDATE OR DELETE ON saas_notices
    FOR EACH ROW EXECUTE FUNCTION saas_notices_append_only();

-- One published version of one document type in its canonical language.
CREATE TABLE saas_documents (
    version_id    BIGSERIAL PRIMARY KEY,
    doc_type      TEXT    NOT NULL,
    level         TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    language      TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    body_sha256   TEXT    NOT NULL,
    summary       TEXT    NOT NULL,
    material      BIGINT  NOT NULL,
    justification TEXT    NOT NULL DEFAULT '',
    published_at  BIGINT  NOT NULL,
    effective_at  BIGINT  NOT NULL,
    status        TEXT    NOT NULL,
    retracted_at  BIGINT  NOT NULL DEFAULT 0,
    author        TEXT    NOT NULL,
    UNIQUE (doc_type, version, language)
);

-- SVC-030: a published version is immutable; the one change allowed is its retraction.
CREATE FUNCTION saas_documents_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'document versions are never deleted (SVC-030)';
    END IF;
    IF OLD.status <> 'published' OR NEW.status <> 'retracted'
        OR (NEW.doc_type, NEW.level, NEW.version, NEW.language, NEW.body, NEW.body_sha256,
            NEW.summary, NEW.material, NEW.justification, NEW.published_at, NEW.effective_at,
            NEW.author)
        IS DISTINCT FROM
           (OLD.doc_type, OLD.level, OLD.version, OLD.language, OLD.body, OLD.body_sha256,
            OLD.summary, OLD.material, OLD.justification, OLD.published_at, OLD.effective_at,
            OLD.author) THEN
        RAISE EXCEPTION 'a published document version is immutable; only its retraction is recorded (SVC-030)';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER saas_documents_immutable BEFORE UPDATE OR DELETE ON saas_documents
    FOR EACH ROW EXECUTE FUNCTION saas_documents_immutable();

-- One decision (acceptance or refusal) per tenant, version and person: person_key is 0
-- for a tenant-level document, the member id for a person-level one. ends_at: when a
-- refusal ends the service (SVC-038), 0 for an acceptance.
CREATE TABLE saas_acceptances (
    acceptance_id   BIGSERIAL PRIMARY KEY,
    account_id      BIGINT  NOT NULL,
    version_id      BIGINT  NOT NULL,
    person_key      BIGINT  NOT NULL,
    member_id       BIGINT  NOT NULL,
    login           TEXT    NOT NULL,
    role            TEXT    NOT NULL,
    doc_type        TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    language        TEXT    NOT NULL,
    content_sha256  TEXT    NOT NULL,
    decision        TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    decided_at      BIGINT  NOT NULL,
    client_ip       TEXT    NOT NULL DEFAULT '',
    user_agent      TEXT    NOT NULL DEFAULT '',
    client_type     TEXT    NOT NULL DEFAULT '',
    request_id      TEXT    NOT NULL DEFAULT '',
    event_type      TEXT    NOT NULL DEFAULT '',
    evidence        TEXT    NOT NULL DEFAULT '',
    ends_at         BIGINT  NOT NULL DEFAULT 0,
    UNIQUE (account_id, version_id, person_key)
);

CREATE FUNCTION saas_acceptances_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'saas_acceptances is append-only (SVC-032)';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER saas_acceptances_no_update BEFORE UPDATE OR DELETE ON saas_acceptances
    FOR EACH ROW EXECUTE FUNCTION saas_acceptances_append_only();
