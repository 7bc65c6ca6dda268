-- Schema and seed data for the users example: 1,000 users, about half active.
-- Loaded by ./bootstrap demo and by the tests; safe to run again (it starts over).
DROP TABLE IF EXISTS users;
CREATE TABLE users (
    id         serial PRIMARY KEY,
    name       text NOT NULL,
    email      text NOT NULL UNIQUE,
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z'
);
INSERT INTO users (name, email, active, created_at)
SELECT 'User ' || i,
       'user' || i || '@example.com',
       i % 2 = 0,
       timestamptz '2026-01-01T00:00:00Z' + i * interval '1 hour'
FROM generate_series(1, 1000) AS i;
ANALYZE users;
