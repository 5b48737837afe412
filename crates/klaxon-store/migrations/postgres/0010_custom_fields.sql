-- Custom field definitions (response.md 1.11): one row per field, the core
-- `FieldDefinition` as JSON in `definition`. Values live on the incidents (`response.fields`).
-- Keep in step with ../sqlite/0010_custom_fields.sql.
CREATE TABLE custom_fields (
    field_id   TEXT    PRIMARY KEY,
    account_id BIGINT  NOT NULL,
    field_name TEXT    NOT NULL,
    definition TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);
CREATE UNIQUE INDEX custom_fields_name ON custom_fields (account_id, field_name);
