-- +goose Up
-- Open311 GeoReport v2: keys made through the admin API beside those of the city
-- configuration; the contact details of reporters who came through a client (personal data,
-- kept apart from the case and never shown to a client); what a client sent that a case has
-- no place for; the updates clients posted (mySociety's servicerequestupdates); and the
-- indexes the Open311 lists read by time.

ALTER TABLE api_keys ADD COLUMN source TEXT NOT NULL DEFAULT 'config';

-- The email is how a returning reporter is recognised; it is stored lower-cased.
CREATE TABLE open311_contacts (
    user_id     TEXT PRIMARY KEY REFERENCES users(id),
    email       TEXT UNIQUE,
    first_name  TEXT NOT NULL DEFAULT '',
    last_name   TEXT NOT NULL DEFAULT '',
    phone       TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

-- Written just before its case, whose id the API chooses, so no case ever lacks its row;
-- hence no foreign key: a row whose case was never created is never read.
CREATE TABLE open311_requests (
    case_id     TEXT PRIMARY KEY,
    client      TEXT NOT NULL,
    account_id  TEXT NOT NULL DEFAULT '',
    device_id   TEXT NOT NULL DEFAULT '',
    media_url   TEXT NOT NULL DEFAULT '',
    located     BOOLEAN NOT NULL,
    created_at  TIMESTAMP NOT NULL
);

-- external_id is the client's own id for an update: a retry finds the first.
CREATE TABLE open311_updates (
    id           TEXT PRIMARY KEY,
    case_id      TEXT NOT NULL REFERENCES cases(id),
    event_id     TEXT REFERENCES case_events(id),
    external_id  TEXT,
    client       TEXT NOT NULL,
    author_id    TEXT REFERENCES users(id),
    status       TEXT NOT NULL,
    note         TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    UNIQUE (case_id, external_id)
);

-- GET requests reads a city's cases by time; servicerequestupdates its public events; a
-- retried Open311 request is recognised by its idempotency key alone.
CREATE INDEX cases_jurisdiction_created ON cases (jurisdiction_id, created_at, id);
CREATE INDEX case_events_public_created ON case_events (created_at, id) WHERE public = TRUE;
CREATE INDEX idempotency_keys_key ON idempotency_keys (key);

-- +goose Down
DROP INDEX idempotency_keys_key;
DROP INDEX case_events_public_created;
DROP INDEX cases_jurisdiction_created;
DROP TABLE open311_updates;
DROP TABLE open311_requests;
DROP TABLE open311_contacts;
ALTER TABLE api_keys DROP COLUMN source;
