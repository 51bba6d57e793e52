-- Up Migration
--
-- Not for a rolling upgrade: the previous release writes workflow_id, workflow_type and input in
-- every debit's transaction. Stop its API and worker, migrate, then start this release (README,
-- "Upgrading").

-- A balance follow-up says what a credit movement caused (a low-balance notice to send, a top-up
-- to run) as a kind and its facts, no longer as the workflow that does the work: the credit
-- engine that writes it knows no workflows, and temporal/follow-ups.ts maps each kind to its
-- workflow. A row keeps its key, which for rows written before was their workflow ID: the same
-- string the engine now makes (`low-balance:<account>:<n>`, `topup:<topup ID>`).
--
-- Rows written before get their kind and facts from what they recorded, so that one not started
-- yet (a crash before its start) is started as it would have been: the same workflow type and ID,
-- with the input it recorded. A notice's email was queued with its row (queuing it again under
-- its key changes nothing); its facts are those its `balance.low` event reported.
--
-- Safe to run again: each step checks whether it is done.

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'balance_follow_ups'
               AND column_name = 'workflow_id') THEN
    ALTER TABLE balance_follow_ups RENAME COLUMN workflow_id TO key;
  END IF;
END $$;

ALTER TABLE balance_follow_ups ADD COLUMN IF NOT EXISTS kind text;
ALTER TABLE balance_follow_ups ADD COLUMN IF NOT EXISTS facts jsonb;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'balance_follow_ups'
               AND column_name = 'workflow_type') THEN
    UPDATE balance_follow_ups
    SET kind = 'topup', facts = jsonb_build_object('topupId', input->>'topupId')
    WHERE kind IS NULL AND workflow_type = 'topupWorkflow';

    WITH notices AS (
      SELECT key, account_id, (regexp_match(input->>'emailKey', ':([0-9]+)$'))[1]::bigint AS notice
      FROM balance_follow_ups
      WHERE kind IS NULL AND workflow_type = 'lowBalanceNoticeWorkflow'
    ),
    reported AS (
      SELECT n.key, n.notice,
             (SELECT e.data FROM outbound_events e
              WHERE e.account_id = n.account_id AND e.type = 'balance.low'
                AND e.data->>'notice' = n.notice::text
              ORDER BY e.seq LIMIT 1) AS data,
             COALESCE((SELECT t.enabled FROM topup_settings t WHERE t.account_id = n.account_id), false)
               AS auto_topup
      FROM notices n
    )
    UPDATE balance_follow_ups f
    SET kind = 'low_balance_notice',
        facts = jsonb_build_object('notice', r.notice, 'available', r.data->'available',
                                   'threshold', r.data->'threshold', 'autoTopup', r.auto_topup)
    FROM reported r
    WHERE f.key = r.key;

    ALTER TABLE balance_follow_ups DROP COLUMN workflow_type, DROP COLUMN input;
  END IF;
END $$;

-- A row of any other workflow would fail here, and the whole migration with it: nothing is lost.
ALTER TABLE balance_follow_ups ALTER COLUMN kind SET NOT NULL, ALTER COLUMN facts SET NOT NULL;
ALTER TABLE balance_follow_ups DROP CONSTRAINT IF EXISTS balance_follow_ups_kind_check;
ALTER TABLE balance_follow_ups
  ADD CONSTRAINT balance_follow_ups_kind_check CHECK (kind IN ('low_balance_notice', 'topup'));

-- Down Migration
-- Forward-only.
