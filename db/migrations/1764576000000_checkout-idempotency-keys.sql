-- Up Migration

-- Checkout idempotency keys were `<account>:<key>` with ':' allowed in both parts, so two
-- accounts could spell the same key. They become `checkout:<account, with % and : encoded>:<key>`,
-- the form every account-scoped key has (see accountScopedKey). Every row that exists when this
-- runs is of the old form; the migration table makes sure it runs once.
UPDATE checkout_sessions
SET idempotency_key = 'checkout:' || replace(replace(account_id, '%', '%25'), ':', '%3A') || ':'
                      || substr(idempotency_key, length(account_id) + 2)
WHERE idempotency_key IS NOT NULL
  AND starts_with(idempotency_key, account_id || ':');

-- Down Migration
-- Forward-only.
