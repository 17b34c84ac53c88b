-- +goose Up
-- The first schema: cities and their configuration, people and devices, cases with their
-- append-only event log, photos, the inbox, the outbox and idempotency keys.

CREATE TABLE jurisdictions (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    timezone              TEXT NOT NULL,
    boundary              TEXT,
    triage_department_id  TEXT,
    next_case_seq         BIGINT NOT NULL DEFAULT 0,
    config_hash           TEXT NOT NULL DEFAULT '',
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL
);

CREATE TABLE departments (
    id               TEXT PRIMARY KEY,
    jurisdiction_id  TEXT NOT NULL REFERENCES jurisdictions(id),
    code             TEXT NOT NULL,
    name             TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    UNIQUE (jurisdiction_id, code)
);

CREATE TABLE categories (
    id                TEXT PRIMARY KEY,
    jurisdiction_id   TEXT NOT NULL REFERENCES jurisdictions(id),
    code              TEXT NOT NULL,
    name              TEXT NOT NULL,
    group_name        TEXT NOT NULL DEFAULT '',
    description       TEXT NOT NULL DEFAULT '',
    department_id     TEXT REFERENCES departments(id),
    sla_hours         INTEGER NOT NULL DEFAULT 0,
    attributes        TEXT NOT NULL DEFAULT '[]',
    active            BOOLEAN NOT NULL DEFAULT TRUE,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    UNIQUE (jurisdiction_id, code)
);

CREATE TABLE areas (
    id               TEXT PRIMARY KEY,
    jurisdiction_id  TEXT NOT NULL REFERENCES jurisdictions(id),
    code             TEXT NOT NULL,
    name             TEXT NOT NULL,
    geometry         TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    UNIQUE (jurisdiction_id, code)
);

CREATE TABLE routing_rules (
    id               TEXT PRIMARY KEY,
    jurisdiction_id  TEXT NOT NULL REFERENCES jurisdictions(id),
    category_id      TEXT NOT NULL REFERENCES categories(id),
    area_id          TEXT NOT NULL REFERENCES areas(id),
    department_id    TEXT NOT NULL REFERENCES departments(id),
    created_at       TIMESTAMP NOT NULL,
    UNIQUE (category_id, area_id)
);

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    role             TEXT NOT NULL,
    jurisdiction_id  TEXT REFERENCES jurisdictions(id),
    department_id    TEXT REFERENCES departments(id),
    email            TEXT UNIQUE,
    name             TEXT NOT NULL DEFAULT '',
    password_hash    TEXT NOT NULL DEFAULT '',
    disabled         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);

CREATE TABLE devices (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users(id),
    device_id         TEXT NOT NULL UNIQUE,
    platform          TEXT NOT NULL,
    push_token        TEXT,
    locale            TEXT NOT NULL DEFAULT 'en',
    token_invalid_at  TIMESTAMP,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);
CREATE INDEX devices_user ON devices (user_id);

CREATE TABLE cases (
    id                 TEXT PRIMARY KEY,
    number             TEXT NOT NULL UNIQUE,
    jurisdiction_id    TEXT NOT NULL REFERENCES jurisdictions(id),
    category_id        TEXT NOT NULL REFERENCES categories(id),
    area_id            TEXT REFERENCES areas(id),
    department_id      TEXT REFERENCES departments(id),
    assignee_id        TEXT REFERENCES users(id),
    reporter_id        TEXT NOT NULL REFERENCES users(id),
    status             TEXT NOT NULL,
    resolution         TEXT NOT NULL DEFAULT '',
    priority           INTEGER NOT NULL DEFAULT 0,
    description        TEXT NOT NULL,
    lat                REAL NOT NULL,
    lon                REAL NOT NULL,
    address            TEXT NOT NULL DEFAULT '',
    attributes         TEXT NOT NULL DEFAULT '{}',
    due_at             TIMESTAMP,
    dispatched_at      TIMESTAMP,
    first_response_at  TIMESTAMP,
    resolved_at        TIMESTAMP,
    closed_at          TIMESTAMP,
    duplicate_of       TEXT REFERENCES cases(id),
    supporters         INTEGER NOT NULL DEFAULT 0,
    version            INTEGER NOT NULL,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL
);
-- The work queue reads a department's open cases by status and due time; supervisors read a
-- jurisdiction's; citizens read their own, newest first.
CREATE INDEX cases_queue ON cases (department_id, status, due_at, id);
CREATE INDEX cases_jurisdiction ON cases (jurisdiction_id, status, created_at, id);
CREATE INDEX cases_reporter ON cases (reporter_id, created_at, id);

CREATE TABLE case_events (
    id           TEXT PRIMARY KEY,
    case_id      TEXT NOT NULL REFERENCES cases(id),
    seq          INTEGER NOT NULL,
    type         TEXT NOT NULL,
    actor_id     TEXT,
    actor_role   TEXT NOT NULL,
    from_status  TEXT NOT NULL DEFAULT '',
    to_status    TEXT NOT NULL DEFAULT '',
    public       BOOLEAN NOT NULL,
    note         TEXT NOT NULL DEFAULT '',
    data         TEXT NOT NULL DEFAULT '{}',
    created_at   TIMESTAMP NOT NULL,
    UNIQUE (case_id, seq)
);

CREATE TABLE media (
    id            TEXT PRIMARY KEY,
    case_id       TEXT REFERENCES cases(id),
    owner_id      TEXT NOT NULL REFERENCES users(id),
    kind          TEXT NOT NULL,
    object_key    TEXT NOT NULL UNIQUE,
    content_type  TEXT NOT NULL,
    size          BIGINT NOT NULL,
    width         INTEGER NOT NULL DEFAULT 0,
    height        INTEGER NOT NULL DEFAULT 0,
    sha256        TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL
);
CREATE INDEX media_case ON media (case_id);

CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    case_id     TEXT NOT NULL REFERENCES cases(id),
    event_id    TEXT NOT NULL REFERENCES case_events(id),
    status      TEXT NOT NULL,
    resolution  TEXT NOT NULL DEFAULT '',
    read_at     TIMESTAMP,
    created_at  TIMESTAMP NOT NULL,
    UNIQUE (event_id, user_id)
);
CREATE INDEX notifications_inbox ON notifications (user_id, created_at, id);

-- One row per push: the unique pair is what keeps a retried task from pushing twice.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES case_events(id),
    device_id       TEXT NOT NULL REFERENCES devices(id),
    state           TEXT NOT NULL,
    fcm_message_id  TEXT NOT NULL DEFAULT '',
    error           TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    UNIQUE (event_id, device_id)
);

CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    task_type        TEXT NOT NULL,
    payload          TEXT NOT NULL,
    process_at       TIMESTAMP NOT NULL,
    next_attempt_at  TIMESTAMP NOT NULL,
    enqueued_at      TIMESTAMP,
    done_at          TIMESTAMP,
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TIMESTAMP NOT NULL
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE done_at IS NULL;

CREATE TABLE idempotency_keys (
    user_id      TEXT NOT NULL REFERENCES users(id),
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    case_id      TEXT NOT NULL REFERENCES cases(id),
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- Open311 clients write with a per-client key; only its SHA-256 is kept.
CREATE TABLE api_keys (
    id               TEXT PRIMARY KEY,
    jurisdiction_id  TEXT NOT NULL REFERENCES jurisdictions(id),
    key_sha256       TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE idempotency_keys;
DROP TABLE outbox;
DROP TABLE deliveries;
DROP TABLE notifications;
DROP TABLE media;
DROP TABLE case_events;
DROP TABLE cases;
DROP TABLE devices;
DROP TABLE users;
DROP TABLE routing_rules;
DROP TABLE areas;
DROP TABLE categories;
DROP TABLE departments;
DROP TABLE jurisdictions;
