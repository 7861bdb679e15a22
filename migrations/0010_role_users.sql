-- pixport schema: one database user per role, each granted only what its
-- own SQL uses, so the worker and the Lambda never hold the master user's
-- secret (docs/security.md, "Least privilege").
--
-- The users are made locked and without a password: a password cannot live
-- in a migration. `./run migrate` (scripts/migrate.py) sets each one from
-- its role's secret (deploy/template.yaml: EdgeDatabaseSecret,
-- ResizerDatabaseSecret; locally local/ports.env) and unlocks it, on every
-- run, so a rotated secret is applied by migrating again.
--
-- A migration that adds a table a role uses grants it here too, in its own
-- file: without the grant the role's statements are refused.
CREATE USER IF NOT EXISTS 'pixport_edge'@'%' ACCOUNT LOCK;
CREATE USER IF NOT EXISTS 'pixport_resizer'@'%' ACCOUNT LOCK;

-- The edge worker (edge/src/db.rs, webhook.rs, sweep.rs): images and their
-- tags, checksum holds, webhooks and their outbox, the sweep's cursor and
-- bucket record. No DDL, no schema_migrations, nothing outside this schema.
GRANT SELECT, INSERT, UPDATE, DELETE ON images TO 'pixport_edge'@'%';
GRANT SELECT, INSERT, DELETE ON image_tags TO 'pixport_edge'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON image_checksums TO 'pixport_edge'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON webhooks TO 'pixport_edge'@'%';
GRANT SELECT, UPDATE, DELETE ON webhook_outbox TO 'pixport_edge'@'%';
GRANT SELECT, INSERT, UPDATE ON sweep_cursors TO 'pixport_edge'@'%';
GRANT SELECT, INSERT ON sweep_bucket TO 'pixport_edge'@'%';

-- The resize Lambda (lambda/src/aws.rs): claims, settles and forgets rows of
-- images, nothing else. The triggers on images that fill webhook_outbox and
-- image_checksums run as their definer (the master user), not as it.
GRANT SELECT, UPDATE, DELETE ON images TO 'pixport_resizer'@'%';
