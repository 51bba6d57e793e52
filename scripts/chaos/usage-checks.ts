import type { Sql } from '../../db/client';
import type { UsageAnswer, UsageSendResult } from './usage-sender';
import type { UsageFeature, UsagePlan } from './usage-workload';

/**
 * What must hold of the usage stream after the run: every event that was answered accepted or
 * duplicate is stored exactly once, with what the answers said it burned; none stored that every
 * answer refused; the credits burned per account and feature are the usage priced once
 * (floor(Σ quantity × credits / units), as the engine's meters keep it); every usage ledger row
 * burned exactly what its events say; every refusal for insufficient credits is borne out by what
 * the account holds at the end; and no account owes that used only features that refuse debt.
 *
 * What it finds per account (granted, burned) feeds the balance check of checks.ts.
 */

/** A refusal the plan can lead to: the credits ran out on a feature that refuses debt. */
const EXPECTED_REFUSAL = 'insufficient_credits';

export interface UsageCheckResult {
  events: number;
  /** Events stored (each once: the table's key). */
  stored: number;
  /** Deliveries answered accepted, duplicate, refused (by code) or in conflict. */
  acceptedAnswers: number;
  duplicateAnswers: number;
  refusedByCode: Record<string, number>;
  conflicts: number;
  /** Events whose every answer was refused (never stored). */
  refusedEvents: number;
  /** Accounts with at least one event refused for insufficient credits, of all that used. */
  accountsWithRefusals: number;
  accountsUsing: number;
  /** Stored events whose answer `accepted` never reached the client (a retry answered duplicate). */
  acceptedAnswerLost: number;
  /** Answered accepted or duplicate, and not stored. */
  lost: number;
  /** Answered accepted more than once. */
  doubled: number;
  /** Answers that say other credits or another ledger row than what is stored. */
  answerMismatches: number;
  /** (account, feature) pairs whose credits burned are not the usage priced once. */
  pricingMismatches: number;
  /** Usage ledger rows that did not burn exactly what their events say. */
  ledgerMismatches: number;
  creditsBurned: number;
  violations: Array<{ check: string; examples: string[] }>;
}

export interface UsageOutcome {
  result: UsageCheckResult;
  /** Per account: what its usage burned (Σ stored credits) and what it was granted. */
  burned: Map<string, number>;
  granted: Map<string, number>;
  /** Accounts the balance check must cover beyond the purchase plan's. */
  accounts: string[];
}

interface StoredEvent {
  account_id: string;
  event_id: string;
  feature: string;
  quantity: string;
  credits: string;
  ledger_entry_id: string | null;
}

const keyOf = (accountId: string, eventId: string) => `${accountId}\u0000${eventId}`;

/** The usage priced once, rounded down once; the check's own arithmetic, not the engine's. */
function pricedOnce(totalQuantity: bigint, feature: UsageFeature): bigint {
  return (totalQuantity * BigInt(feature.credits)) / BigInt(feature.units);
}

const ceilCost = (quantity: number, feature: UsageFeature) =>
  Math.ceil((quantity * feature.credits) / feature.units);

export async function checkUsage(input: {
  plan: UsagePlan;
  send: UsageSendResult;
  sql: Sql;
}): Promise<UsageOutcome> {
  const { plan, send, sql } = input;
  const violations: UsageCheckResult['violations'] = [];
  const flag = (check: string, examples: string[]) => {
    if (examples.length > 0) violations.push({ check, examples });
  };
  const features = new Map(plan.features.map((feature) => [feature.key, feature]));
  const usageOnly = new Set(plan.accounts.map((account) => account.id));

  const stored = await sql<StoredEvent[]>`
    SELECT account_id, event_id, feature, quantity::text AS quantity, credits::text AS credits,
           ledger_entry_id::text AS ledger_entry_id
    FROM usage_events`;
  const storedByKey = new Map(stored.map((row) => [keyOf(row.account_id, row.event_id), row]));
  const planned = new Set(plan.events.map((event) => keyOf(event.accountId, event.id)));
  flag(
    'usage event stored that was never sent',
    stored
      .filter((row) => !planned.has(keyOf(row.account_id, row.event_id)))
      .map((row) => `${row.account_id} ${row.event_id}`),
  );

  // --- each event: its answers against what is stored ---------------------------------------------
  const lost: string[] = [];
  const doubled: string[] = [];
  const mismatched: string[] = [];
  const storedRefused: string[] = [];
  const differs: string[] = [];
  const unanswered: string[] = [];
  const unexpectedRefusals: string[] = [];
  const conflicts: string[] = [];
  const refusedByCode: Record<string, number> = {};
  const refusals: Array<{ accountId: string; quantity: number; feature: UsageFeature; label: string }> = [];
  const accountsWithRefusals = new Set<string>();
  let acceptedAnswers = 0;
  let duplicateAnswers = 0;
  let refusedEvents = 0;
  let acceptedAnswerLost = 0;
  plan.events.forEach((event, index) => {
    const label = `${event.accountId} ${event.id}`;
    const feature = features.get(event.feature) as UsageFeature;
    const answers: UsageAnswer[] = send.perEvent[index] ?? [];
    const row = storedByKey.get(keyOf(event.accountId, event.id));
    const counted = answers.filter((a) => a.status === 'accepted' || a.status === 'duplicate');
    const accepted = answers.filter((a) => a.status === 'accepted').length;
    acceptedAnswers += accepted;
    duplicateAnswers += answers.filter((a) => a.status === 'duplicate').length;
    if (answers.length === 0) unanswered.push(label);
    if (accepted > 1) doubled.push(`${label} answered accepted ${accepted}×`);
    for (const answer of answers) {
      if (answer.status === 'refused') {
        const code = answer.code ?? 'no code';
        refusedByCode[code] = (refusedByCode[code] ?? 0) + 1;
        if (code !== EXPECTED_REFUSAL || feature.overdraft !== 'refuse') {
          unexpectedRefusals.push(`${label} (${event.feature}): refused ${code}`);
        } else {
          accountsWithRefusals.add(event.accountId);
          refusals.push({ accountId: event.accountId, quantity: event.quantity, feature, label });
        }
      } else if (answer.status === 'conflict') {
        conflicts.push(`${label}: ${answer.code ?? 'no code'}`);
      } else if (answer.status !== 'accepted' && answer.status !== 'duplicate') {
        unexpectedRefusals.push(`${label}: answered ${answer.status}`);
      }
    }
    if (!row) {
      if (counted.length > 0) lost.push(`${label}: answered ${counted.map((a) => a.status).join(', ')}`);
      else if (answers.length > 0) refusedEvents += 1;
      return;
    }
    if (counted.length === 0 && answers.length > 0) storedRefused.push(label);
    if (accepted === 0 && counted.length > 0) acceptedAnswerLost += 1;
    if (row.feature !== event.feature || Number(row.quantity) !== event.quantity) {
      differs.push(
        `${label}: stored ${row.quantity} ${row.feature}, sent ${event.quantity} ${event.feature}`,
      );
    }
    const ledgerEntryId = row.ledger_entry_id === null ? null : Number(row.ledger_entry_id);
    for (const answer of counted) {
      if (answer.credits !== Number(row.credits) || answer.ledgerEntryId !== ledgerEntryId) {
        mismatched.push(
          `${label}: answered ${answer.status} ${String(answer.credits)} credits, ledger ${String(answer.ledgerEntryId)}; ` +
            `stored ${row.credits}, ledger ${String(ledgerEntryId)}`,
        );
      }
    }
  });
  flag('usage event never answered 2xx', unanswered);
  flag('usage event answered accepted or duplicate, not stored (lost)', lost);
  flag('usage event answered accepted more than once', doubled);
  flag('usage event stored though every answer refused it', storedRefused);
  flag('usage answer disagrees with the stored event (credits or ledger row)', mismatched);
  flag('stored usage event differs from what was sent', differs);
  flag('usage event refused with a code the plan cannot lead to', unexpectedRefusals);
  flag('usage event answered as a conflict (it was always sent with the same body)', conflicts);
  if (send.malformedAnswers > 0) {
    flag('usage answer without one result per event', [`${send.malformedAnswers} answers`]);
  }

  // --- per account and feature: the credits burned are the usage priced once ---------------------
  const pairs = new Map<string, { accountId: string; feature: string; quantity: bigint; credits: bigint }>();
  const burned = new Map<string, number>();
  const usedAllowing = new Set<string>();
  for (const row of stored) {
    const key = keyOf(row.account_id, row.feature);
    const pair = pairs.get(key) ?? {
      accountId: row.account_id,
      feature: row.feature,
      quantity: 0n,
      credits: 0n,
    };
    pair.quantity += BigInt(row.quantity);
    pair.credits += BigInt(row.credits);
    pairs.set(key, pair);
    burned.set(row.account_id, (burned.get(row.account_id) ?? 0) + Number(row.credits));
    if (features.get(row.feature)?.overdraft === 'allow') usedAllowing.add(row.account_id);
  }
  const pricing: string[] = [];
  for (const pair of pairs.values()) {
    const feature = features.get(pair.feature);
    const expected = feature ? pricedOnce(pair.quantity, feature) : null;
    if (expected !== pair.credits) {
      pricing.push(
        `${pair.accountId} ${pair.feature}: ${pair.quantity} units burned ${pair.credits} credits, priced once ${String(expected)}`,
      );
    }
  }
  flag('credits burned differ from the usage priced once', pricing);

  // --- the ledger: each usage row burned exactly its events' credits, on their account ------------
  const usageRows = await sql<{ id: string; account_id: string; delta: string }[]>`
    SELECT id::text AS id, account_id, delta::text AS delta FROM credit_ledger WHERE kind = 'usage'`;
  const eventsOfRow = new Map<string, { credits: number; accounts: Set<string> }>();
  const ledger: string[] = [];
  for (const row of stored) {
    if (row.ledger_entry_id === null) {
      if (Number(row.credits) !== 0)
        ledger.push(`${row.account_id} ${row.event_id}: credits without a ledger row`);
      continue;
    }
    const entry = eventsOfRow.get(row.ledger_entry_id) ?? { credits: 0, accounts: new Set<string>() };
    entry.credits += Number(row.credits);
    entry.accounts.add(row.account_id);
    eventsOfRow.set(row.ledger_entry_id, entry);
  }
  const rowIds = new Set(usageRows.map((row) => row.id));
  for (const row of usageRows) {
    const events = eventsOfRow.get(row.id);
    const accounts = [...(events?.accounts ?? [])];
    if (-Number(row.delta) !== (events?.credits ?? 0) || accounts.some((id) => id !== row.account_id)) {
      ledger.push(
        `ledger ${row.id} (${row.account_id}, ${row.delta}): its events burned ${events?.credits ?? 0} on ${accounts.join(', ') || 'none'}`,
      );
    }
  }
  for (const id of eventsOfRow.keys()) {
    if (!rowIds.has(id)) ledger.push(`events name ledger ${id}, which is no usage row`);
  }
  flag('usage ledger row differs from what its events burned', ledger);

  // --- grants, and what the accounts hold at the end -----------------------------------------------
  const grantRows = await sql<{ account_id: string; delta: string }[]>`
    SELECT account_id, delta::text AS delta FROM credit_ledger
    WHERE kind = 'promotional_grant' AND account_id = ANY (${[...usageOnly]}::text[])`;
  const granted = new Map<string, number>();
  for (const row of grantRows)
    granted.set(row.account_id, (granted.get(row.account_id) ?? 0) + Number(row.delta));
  flag(
    'usage account not granted once what the plan gave it',
    plan.grants
      .filter(
        (grant) =>
          granted.get(grant.accountId) !== grant.amount ||
          grantRows.filter((row) => row.account_id === grant.accountId).length !== 1,
      )
      .map(
        (grant) =>
          `${grant.accountId}: granted ${String(granted.get(grant.accountId))}, planned ${grant.amount}`,
      ),
  );

  // What a usage account could still spend at the end is at most what it could spend at any
  // refusal (its credits only went down after its grant): each refusal must still be borne out.
  const available = await sql<{ account_id: string; available: string; owed: string }[]>`
    SELECT b.account_id, (b.balance - b.held)::text AS available,
           COALESCE((SELECT SUM(g.owed) FROM credit_grants g WHERE g.account_id = b.account_id), 0)::text AS owed
    FROM credit_balances b`;
  const availableOf = new Map(available.map((row) => [row.account_id, Number(row.available)]));
  flag(
    'refused for insufficient credits, yet the account still holds enough at the end',
    refusals
      .filter(
        (refusal) =>
          usageOnly.has(refusal.accountId) &&
          (availableOf.get(refusal.accountId) ?? 0) >= ceilCost(refusal.quantity, refusal.feature),
      )
      .map(
        (refusal) =>
          `${refusal.label}: ${refusal.quantity} ${refusal.feature.key}, ${String(availableOf.get(refusal.accountId))} available at the end`,
      ),
  );
  const owing = available.filter((row) => Number(row.owed) > 0 && !usedAllowing.has(row.account_id));
  flag(
    'account owes though none of its usage allows debt',
    owing.map((row) => `${row.account_id}: owes ${row.owed}`),
  );

  const accountsUsing = new Set(plan.events.map((event) => event.accountId));
  return {
    result: {
      events: plan.events.length,
      stored: stored.length,
      acceptedAnswers,
      duplicateAnswers,
      refusedByCode,
      conflicts: conflicts.length,
      refusedEvents,
      accountsWithRefusals: accountsWithRefusals.size,
      accountsUsing: accountsUsing.size,
      acceptedAnswerLost,
      lost: lost.length,
      doubled: doubled.length,
      answerMismatches: mismatched.length,
      pricingMismatches: pricing.length,
      ledgerMismatches: ledger.length,
      creditsBurned: [...burned.values()].reduce((total, credits) => total + credits, 0),
      violations,
    },
    burned,
    granted,
    accounts: plan.accounts.map((account) => account.id),
  };
}
