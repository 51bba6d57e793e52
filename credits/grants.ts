import {
  availableCredits,
  planDraws,
  revokedTotal,
  splitRevocation,
  type GrantCategory,
  type GrantSource,
  type GrantTally,
} from '../domain/credit-grant-rules';
import { errors } from '../domain/errors';
import { toSafeInteger } from '../domain/integers';
import { SentWithCommit, type Queryable, type Sql } from '../db/client';
import { endpointsWant } from '../db/outbound-webhooks/events';
import { watchBalance } from './balance-watch';
import {
  applyDraws,
  drawStatements,
  live,
  liveCredits,
  readLiveGrants,
  readSpendingFacts,
} from './draw-down';
import { recordLedgerEvent } from './follow-ups';
import { keepHoldsCovered } from './holds';
import {
  findEntryByKey,
  insertMovements,
  lockAccountBalance,
  recordMovement,
  toEntry,
  updateBalances,
  type LedgerEntry,
  type LedgerRow,
} from './ledger';

/**
 * Credit grants: every credit that enters an account is a grant, and every movement that takes
 * credits says which grants it took them from (credit_allocations). Each function here runs in
 * the caller's transaction and takes the account's balance lock first (see lockAccountBalance).
 */

export interface Grant extends GrantTally {
  id: number;
  accountId: string;
  source: GrantSource;
  category: GrantCategory;
  priority: number;
  effectiveAt: Date;
  expiresAt: Date | null;
  closedAt: Date | null;
  closedReason: 'expired' | 'voided' | null;
  businessKey: string;
  reason: string | null;
  createdBy: string | null;
  createdAt: Date;
}

interface GrantRow {
  id: string;
  account_id: string;
  source: GrantSource;
  category: GrantCategory;
  priority: number;
  effective_at: Date;
  expires_at: Date | null;
  amount: string;
  remaining: string;
  drawn: string;
  expired: string;
  voided: string;
  revoked_remaining: string;
  owed: string;
  repaid: string;
  closed_at: Date | null;
  closed_reason: 'expired' | 'voided' | null;
  business_key: string;
  reason: string | null;
  created_by: string | null;
  created_at: Date;
}

const GRANT_COLUMNS =
  'id, account_id, source, category, priority, effective_at, expires_at, amount, remaining, drawn, expired, ' +
  'voided, revoked_remaining, owed, repaid, closed_at, closed_reason, business_key, reason, created_by, created_at';

const count = (value: string, what: string) => toSafeInteger(value, what);

function toGrant(row: GrantRow): Grant {
  return {
    id: count(row.id, 'grant id'),
    accountId: row.account_id,
    source: row.source,
    category: row.category,
    priority: row.priority,
    effectiveAt: row.effective_at,
    expiresAt: row.expires_at,
    amount: count(row.amount, 'grant amount'),
    remaining: count(row.remaining, 'remaining'),
    drawn: count(row.drawn, 'drawn'),
    expired: count(row.expired, 'expired'),
    voided: count(row.voided, 'voided'),
    revokedRemaining: count(row.revoked_remaining, 'revoked'),
    owed: count(row.owed, 'owed'),
    repaid: count(row.repaid, 'repaid'),
    closedAt: row.closed_at,
    closedReason: row.closed_reason,
    businessKey: row.business_key,
    reason: row.reason,
    createdBy: row.created_by,
    createdAt: row.created_at,
  };
}

export async function findGrant(tx: Queryable, id: number): Promise<Grant | null> {
  const [row] = await tx<GrantRow[]>`SELECT ${tx.unsafe(GRANT_COLUMNS)} FROM credit_grants WHERE id = ${id}`;
  return row ? toGrant(row) : null;
}

export async function findGrantByKey(tx: Queryable, businessKey: string): Promise<Grant | null> {
  const [row] = await tx<GrantRow[]>`
    SELECT ${tx.unsafe(GRANT_COLUMNS)} FROM credit_grants WHERE business_key = ${businessKey}`;
  return row ? toGrant(row) : null;
}

async function lockGrant(tx: Queryable, id: number): Promise<Grant> {
  const [row] = await tx<GrantRow[]>`
    SELECT ${tx.unsafe(GRANT_COLUMNS)} FROM credit_grants WHERE id = ${id} FOR UPDATE`;
  if (!row) throw new Error(`grant ${id} does not exist`);
  return toGrant(row);
}

async function allocate(
  tx: Queryable,
  businessKey: string,
  grantId: number,
  amount: number,
  debtorGrantId: number | null = null,
): Promise<void> {
  if (amount === 0) return;
  await tx`
    INSERT INTO credit_allocations (business_key, grant_id, amount, debtor_grant_id)
    VALUES (${businessKey}, ${grantId}, ${amount}, ${debtorGrantId})`;
}

export interface NewGrant {
  accountId: string;
  source: GrantSource;
  category: GrantCategory;
  priority: number;
  expiresAt: Date | null;
  amount: number;
  /** The ledger key of the movement that creates the grant: it happens once. */
  businessKey: string;
  /** The ledger kind of that movement ('purchase', 'subscription', 'grant'…). */
  kind: string;
  reason: string | null;
  createdBy?: string | null;
}

/**
 * Adds credits as a new grant: the ledger row, the grant, and the repayment of any debt the
 * account owes from it. A key recorded before changes nothing and answers the grant it created.
 */
export async function createGrant(
  tx: Queryable,
  input: NewGrant,
): Promise<{ grant: Grant; entry: LedgerEntry; applied: boolean }> {
  await lockAccountBalance(tx, input.accountId);
  const entry = await recordMovement(tx, {
    accountId: input.accountId,
    delta: input.amount,
    kind: input.kind,
    businessKey: input.businessKey,
    reason: input.reason,
  });
  if (!entry) {
    const [existing, grant] = await Promise.all([
      findEntryByKey(tx, input.businessKey),
      findGrantByKey(tx, input.businessKey),
    ]);
    if (!existing || !grant) throw new Error(`credit key ${input.businessKey} conflicted but cannot be read`);
    return { grant, entry: existing, applied: false };
  }
  const [row] = await tx<GrantRow[]>`
    INSERT INTO credit_grants (account_id, source, category, priority, expires_at, amount, remaining,
                               business_key, reason, created_by)
    VALUES (${input.accountId}, ${input.source}, ${input.category}, ${input.priority}, ${input.expiresAt},
            ${input.amount}, ${input.amount}, ${input.businessKey}, ${input.reason}, ${input.createdBy ?? null})
    RETURNING ${tx.unsafe(GRANT_COLUMNS)}`;
  if (!row) throw new Error('grant insert returned nothing');
  await settleDebts(tx, input.accountId, input.businessKey);
  const grant = await findGrant(tx, count(row.id, 'grant id'));
  return { grant: grant ?? toGrant(row), entry, applied: true };
}

/**
 * The grant as its creation left it, for answering a replay of that creation as it was first
 * answered: live, holding its amount less what it repaid at once of the account's debts (the
 * allocations its own key drew from it), whatever happened to it since.
 */
export async function grantAsCreated(tx: Queryable, grant: Grant): Promise<Grant> {
  const [row] = await tx<{ taken: string }[]>`
    SELECT COALESCE(SUM(amount), 0)::text AS taken FROM credit_allocations
    WHERE business_key = ${grant.businessKey} AND grant_id = ${grant.id}`;
  const taken = count(row?.taken ?? '0', 'taken');
  return {
    ...grant,
    remaining: grant.amount - taken,
    drawn: taken,
    expired: 0,
    voided: 0,
    revokedRemaining: 0,
    owed: 0,
    repaid: 0,
    closedAt: null,
    closedReason: null,
  };
}

/**
 * Takes up to `amount` credits from the account's live grants in draw-down order, recording
 * each allocation under the movement's key; answers how many it took.
 */
async function drawFromLiveGrants(
  tx: Queryable,
  accountId: string,
  amount: number,
  businessKey: string,
  debtorGrantId: number | null = null,
): Promise<number> {
  if (amount <= 0) return 0;
  const grants = await readLiveGrants(tx, [accountId], debtorGrantId);
  const { allocations, drawn } = planDraws(grants.get(accountId) ?? [], [{ key: businessKey, amount }]);
  await applyDraws(tx, allocations, debtorGrantId);
  return drawn[0] ?? 0;
}

/** Repays what grants of the account owe (oldest debt first) from its live credits. */
async function settleDebts(tx: Queryable, accountId: string, businessKey: string): Promise<void> {
  const debtors = await tx<{ id: string; owed: string }[]>`
    SELECT id, owed FROM credit_grants WHERE account_id = ${accountId} AND owed > 0 ORDER BY id FOR UPDATE`;
  for (const debtor of debtors) {
    const id = count(debtor.id, 'grant id');
    const repaid = await drawFromLiveGrants(tx, accountId, count(debtor.owed, 'owed'), businessKey, id);
    if (repaid === 0) break;
    await tx`UPDATE credit_grants SET owed = owed - ${repaid}, repaid = repaid + ${repaid} WHERE id = ${id}`;
  }
}

export interface CreditSummary {
  balance: number;
  held: number;
  /** What a debit or a hold may take now: live credits − debt − held. */
  available: number;
  debt: number;
  byCategory: Record<GrantCategory, number>;
}

/** The account's credits as the API shows them. The caller may hold the account's lock. */
export async function summarizeCredits(tx: Queryable, accountId: string): Promise<CreditSummary> {
  const [row] = await tx<
    { balance: string; held: string; live: string; owed: string; paid: string; promotional: string }[]
  >`
    SELECT b.balance, b.held,
           COALESCE(SUM(g.remaining) FILTER (WHERE ${tx.unsafe(live('g.'))}), 0) AS live,
           COALESCE(SUM(g.owed), 0) AS owed,
           COALESCE(SUM(g.remaining) FILTER (WHERE g.category = 'paid'), 0) AS paid,
           COALESCE(SUM(g.remaining) FILTER (WHERE g.category = 'promotional'), 0) AS promotional
    FROM credit_balances b LEFT JOIN credit_grants g ON g.account_id = b.account_id
    WHERE b.account_id = ${accountId}
    GROUP BY b.balance, b.held`;
  if (!row) return { balance: 0, held: 0, available: 0, debt: 0, byCategory: { paid: 0, promotional: 0 } };
  const held = count(row.held, 'held');
  const debt = count(row.owed, 'owed');
  return {
    balance: count(row.balance, 'balance'),
    held,
    available: availableCredits({ live: count(row.live, 'live credits'), debt, held }),
    debt,
    byCategory: { paid: count(row.paid, 'paid'), promotional: count(row.promotional, 'promotional') },
  };
}

/** A movement that spends credits from live grants, once per business key. */
export interface SpendingMovement {
  accountId: string;
  amount: number;
  businessKey: string;
  kind: string;
  reason: string | null;
}

/** What a spending movement answers. */
export interface Spend {
  entry: LedgerEntry;
  /** False: the key was recorded before, and `entry` is what it recorded. */
  applied: boolean;
  /** Whether the movement recorded work to start after the commit (a notice, a top-up). */
  followUps: boolean;
}

/**
 * Spends credits from live grants in draw-down order, once per key and never beyond what is
 * available (held credits stay untouched). A key recorded before answers its entry unchanged.
 *
 * The account is locked first and everything the decision needs is read in the same round trip
 * (each read is its own statement, so it sees what committed before the lock was granted); the
 * writes go in a second one, whatever the number of grants.
 */
export async function drawDown(tx: Queryable, movement: SpendingMovement): Promise<Spend> {
  const spend = await drawDownThenCommit(tx, movement);
  return spend instanceof SentWithCommit ? spend.pending : spend;
}

/**
 * `drawDown` as the last work of its transaction: when the spend causes nothing more (no
 * endpoint asks for its event, no threshold watches the account), its writes are answered as
 * sent, to go out with the COMMIT (transactionCommittingWith), and the account's lock is held for
 * one round trip to the database and back.
 */
export async function drawDownThenCommit(
  tx: Queryable,
  movement: SpendingMovement,
): Promise<Spend | SentWithCommit<Spend>> {
  const { accountId, amount, businessKey } = movement;
  const [locked, existing, grants, facts, announce] = await Promise.all([
    lockAccountBalance(tx, accountId),
    findEntryByKey(tx, businessKey),
    readLiveGrants(tx, [accountId]),
    readSpendingFacts(tx, [accountId]),
    endpointsWant(tx, 'credits.debited'),
  ]);
  if (existing) return { entry: existing, applied: false, followUps: false };
  const mine = grants.get(accountId) ?? [];
  const debt = facts.get(accountId)?.debt ?? 0;
  const available = availableCredits({ live: liveCredits(mine), debt, held: locked.held });
  if (available < amount) throw errors.insufficientCredits(Math.max(available, 0), amount);
  const { allocations, drawn } = planDraws(mine, [{ key: businessKey, amount }]);
  if (drawn[0] !== amount) throw new Error(`drew ${drawn[0]} of ${amount} available credits`);
  // The ledger row, the balance, the grants and the allocations in one statement: a debit is
  // then five exchanges with the database (BEGIN, the lock, the reads, this, COMMIT). Nothing is
  // sent before `execute()`, so insertMovements' refusal of a balance out of range (thrown as it
  // builds) comes before any write, which may go out with the COMMIT.
  const [drawGrants, allocate] = drawStatements(tx, allocations);
  const moveBalance = updateBalances(tx, [{ accountId, delta: -amount, released: 0 }]);
  if (!moveBalance) throw new Error(`a debit of ${amount} moved no balance`);
  const written = tx<LedgerRow[]>`
    WITH balance AS (${moveBalance}), grants AS (${drawGrants}), allocations AS (${allocate})
    ${insertMovements(tx, [{ ...movement, delta: -amount, reason: movement.reason, balanceAfter: locked.balance - amount }])}`
    .execute()
    .then(([row]) => {
      if (!row) throw new Error(`ledger row ${businessKey} was not written`);
      return toEntry(row);
    });
  const watched = facts.get(accountId)?.watched ?? false;
  if (!announce && !watched) {
    return new SentWithCommit(written.then((entry) => ({ entry, applied: true, followUps: false })));
  }
  const entry = await written;
  // What the movement causes commits with it: its event (when an endpoint asks for debits), and
  // a crossing's notice or top-up.
  if (announce) await recordLedgerEvent(tx, entry);
  const followUps = watched ? await watchBalance(tx, accountId, movement.kind) : false;
  return { entry, applied: true, followUps };
}

/**
 * Ends the account's open grants with these business keys now (an earlier expiry stays): nothing
 * is drawn from them from this moment, and the maintenance sweep writes their expiry. For credits
 * whose term ended early, such as the periods of a subscription cancelled on a plan that expires
 * them. Answers how many grants it ended.
 */
export async function expireGrantsNow(
  tx: Queryable,
  accountId: string,
  businessKeys: string[],
): Promise<number> {
  if (businessKeys.length === 0) return 0;
  await lockAccountBalance(tx, accountId);
  const ended = await tx`
    UPDATE credit_grants SET expires_at = LEAST(COALESCE(expires_at, now()), now())
    WHERE account_id = ${accountId} AND closed_at IS NULL AND business_key = ANY (${businessKeys})
    RETURNING id`;
  if (ended.length > 0) await keepHoldsCovered(tx, [accountId], 'the credits it held ended early');
  return ended.length;
}

export const expiryKey = (grantId: number) => `expiry:grant:${grantId}`;
export const voidKey = (grantId: number) => `void:grant:${grantId}`;

/**
 * Closes a grant, taking exactly what remains of it in one ledger row: at its expiry, or by an
 * operator's void. Once closed, a grant is never closed again, so duplicate timers, sweeps and
 * retries move nothing more. An expiry before its time changes nothing.
 */
export async function closeGrant(
  sql: Sql,
  grantId: number,
  close: { as: 'expired' | 'voided'; reason?: string | null },
): Promise<ClosedGrant> {
  return sql.begin((tx) => closeGrantIn(tx, grantId, close));
}

export interface ClosedGrant {
  grant: Grant;
  /** The grant as it was, under its lock, just before this call. */
  before: Grant;
  entry: LedgerEntry | null;
  closedNow: boolean;
}

/** `closeGrant` in the caller's transaction, for callers that write more in the same one. */
export async function closeGrantIn(
  tx: Queryable,
  grantId: number,
  close: { as: 'expired' | 'voided'; reason?: string | null },
): Promise<ClosedGrant> {
  const found = await findGrant(tx, grantId);
  if (!found) throw new Error(`grant ${grantId} does not exist`);
  await lockAccountBalance(tx, found.accountId);
  const grant = await lockGrant(tx, grantId);
  const key = close.as === 'expired' ? expiryKey(grantId) : voidKey(grantId);
  const notDue = close.as === 'expired' && (grant.expiresAt === null || grant.expiresAt > (await dbNow(tx)));
  if (grant.closedAt !== null || notDue) {
    return { grant, before: grant, entry: await findEntryByKey(tx, key), closedNow: false };
  }
  const taken = grant.remaining;
  const entry =
    taken > 0
      ? await recordMovement(tx, {
          accountId: grant.accountId,
          delta: -taken,
          kind: close.as === 'expired' ? 'expiry' : 'void',
          businessKey: key,
          reason:
            close.reason ??
            `${taken} unused credits of grant ${grantId} (${grant.source}) ${close.as === 'expired' ? 'expired' : 'voided'}`,
        })
      : null;
  if (taken > 0) await allocate(tx, key, grantId, taken);
  const column = close.as === 'expired' ? tx`expired = expired + ${taken}` : tx`voided = voided + ${taken}`;
  await tx`
    UPDATE credit_grants SET remaining = 0, ${column}, closed_at = now(), closed_reason = ${close.as}
    WHERE id = ${grantId}`;
  if (taken > 0) {
    await keepHoldsCovered(
      tx,
      [grant.accountId],
      `the credits it held ${close.as === 'expired' ? 'expired' : 'were voided'} (grant ${grantId})`,
    );
  }
  return { grant: (await findGrant(tx, grantId)) ?? grant, before: grant, entry, closedNow: true };
}

/** The database's clock: every process compares times against the same one. */
export async function dbNow(tx: Queryable): Promise<Date> {
  const [row] = await tx<{ now: Date }[]>`SELECT now() AS now`;
  return row?.now ?? new Date();
}

/** Grants whose expiry time has passed and that are not closed yet, oldest due first. */
export async function findDueGrants(sql: Sql, limit: number): Promise<number[]> {
  const rows = await sql<{ id: string }[]>`
    SELECT id FROM credit_grants WHERE closed_at IS NULL AND expires_at <= now()
    ORDER BY expires_at, id LIMIT ${limit}`;
  return rows.map((row) => count(row.id, 'grant id'));
}

/**
 * Moves what refunds and disputes have taken back from one grant to `target` credits, in one
 * ledger row under the movement's key. Taking more: first from what remains of the grant, then
 * as debt, which the account's other live credits repay at once as far as they go. Giving back
 * (a dispute won): the debt first, then the repayments other grants made (to them), then into
 * the grant itself; what would go to a grant that has expired or was voided meanwhile lapses,
 * as it would have. Answers the credits moved (negative: revoked) and the new total.
 */
export async function reviseRevocation(
  tx: Queryable,
  grantId: number,
  target: number,
  movement: { businessKey: string; kind: string; reason: string },
): Promise<{ delta: number; revoked: number; entry: LedgerEntry | null }> {
  const found = await findGrant(tx, grantId);
  if (!found) throw new Error(`grant ${grantId} does not exist`);
  await lockAccountBalance(tx, found.accountId);
  const grant = await lockGrant(tx, grantId);
  const current = revokedTotal(grant);
  const { businessKey } = movement;
  const record = async (delta: number) => {
    if (delta === 0) return null;
    const entry = await recordMovement(tx, { accountId: grant.accountId, delta, ...movement });
    // Callers answer a key they have seen from what they stored; reaching here twice is a bug.
    if (!entry) throw new Error(`revocation key ${businessKey} was already used`);
    return entry;
  };

  if (target > current) {
    const { fromRemaining, asDebt } = splitRevocation(grant, target - current);
    const taken = fromRemaining + asDebt;
    if (taken === 0) return { delta: 0, revoked: current, entry: null };
    const entry = await record(-taken);
    await tx`
      UPDATE credit_grants SET remaining = remaining - ${fromRemaining},
             revoked_remaining = revoked_remaining + ${fromRemaining}, owed = owed + ${asDebt}
      WHERE id = ${grantId}`;
    await allocate(tx, businessKey, grantId, fromRemaining);
    if (asDebt > 0) await settleDebts(tx, grant.accountId, businessKey);
    await keepHoldsCovered(tx, [grant.accountId], `the credits it held were taken back (${movement.kind})`);
    return { delta: -taken, revoked: current + taken, entry };
  }
  if (target >= current) return { delta: 0, revoked: current, entry: null };

  let left = current - Math.max(target, 0);
  let lapsed = 0;
  const closed = grant.closedAt !== null;
  // 1. Debt still owed is simply forgiven.
  const forgiven = Math.min(left, grant.owed);
  left -= forgiven;
  // 2. Repayments other grants made for this grant's debt go back to them.
  const repayers = await tx<{ grant_id: string; net: string }[]>`
    SELECT grant_id, SUM(amount) AS net FROM credit_allocations WHERE debtor_grant_id = ${grantId}
    GROUP BY grant_id HAVING SUM(amount) > 0 ORDER BY max(id) DESC`;
  let unwound = 0;
  for (const repayer of repayers) {
    const back = Math.min(left, count(repayer.net, 'repayment'), grant.repaid - unwound);
    if (back <= 0) break;
    const payer = await lockGrant(tx, count(repayer.grant_id, 'grant id'));
    const into = payer.closedAt === null ? tx`remaining = remaining + ${back}` : lapseInto(tx, payer, back);
    if (payer.closedAt !== null) lapsed += back;
    await tx`UPDATE credit_grants SET drawn = drawn - ${back}, ${into} WHERE id = ${payer.id}`;
    await allocate(tx, businessKey, payer.id, -back, grantId);
    unwound += back;
    left -= back;
  }
  // 3. Repayments with no allocation (balances migrated from before grants) go back to the grant.
  const unrecorded = Math.min(left, grant.repaid - unwound);
  left -= unrecorded;
  // 4. What was taken from the grant's remainder goes back into it.
  const restored = Math.min(left, grant.revokedRemaining);
  const intoGrant = unrecorded + restored;
  if (closed) lapsed += intoGrant;
  const moved = forgiven + unwound + intoGrant;
  const entry = await record(moved - lapsed);
  await tx`
    UPDATE credit_grants SET owed = owed - ${forgiven}, repaid = repaid - ${unwound + unrecorded},
           drawn = drawn - ${unrecorded}, revoked_remaining = revoked_remaining - ${restored},
           ${closed ? lapseInto(tx, grant, intoGrant) : tx`remaining = remaining + ${intoGrant}`}
    WHERE id = ${grantId}`;
  await allocate(tx, businessKey, grantId, -intoGrant);
  return { delta: moved - lapsed, revoked: current - moved, entry };
}

/** Credits given back to a grant that has closed stay closed: counted as expired or voided. */
function lapseInto(tx: Queryable, grant: Grant, credits: number) {
  return grant.closedReason === 'voided'
    ? tx`voided = voided + ${credits}`
    : tx`expired = expired + ${credits}`;
}

/** An account's grants, newest first. */
export async function listGrants(
  sql: Queryable,
  accountId: string,
  page: { limit: number; beforeId: number | null },
): Promise<Grant[]> {
  const rows = await sql<GrantRow[]>`
    SELECT ${sql.unsafe(GRANT_COLUMNS)} FROM credit_grants
    WHERE account_id = ${accountId} ${page.beforeId === null ? sql`` : sql`AND id < ${page.beforeId}`}
    ORDER BY id DESC LIMIT ${page.limit}`;
  return rows.map(toGrant);
}
