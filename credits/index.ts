/**
 * The credit engine's public functions: the only way credits enter, leave or are held. Rooms
 * (purchases, subscriptions, reversals, top-ups…) call these and never write the engine's tables
 * themselves; each movement writes what it causes (outbound events, follow-ups) in its own
 * transaction. The engine imports only the database client and pure rules (see eslint.config.mjs).
 */
export { createAccount, createAccounts, findAccount, type Account } from './accounts';
export { shrinkUncoveredHolds } from './holds';
export {
  findBalanceDrift,
  findEntryByKey,
  findOrphanRows,
  listLedgerEntries,
  lockAccountBalance,
  type Allocation,
  type LedgerDrift,
  type LedgerEntry,
  type LedgerEntryWithAllocations,
} from './ledger';
export {
  closeGrant,
  closeGrantIn,
  createGrant,
  dbNow,
  drawDown,
  expireGrantsNow,
  expiryKey,
  findDueGrants,
  findGrant,
  findGrantByKey,
  grantAsCreated,
  listGrants,
  reviseRevocation,
  summarizeCredits,
  voidKey,
  type ClosedGrant,
  type CreditSummary,
  type Grant,
  type NewGrant,
} from './grants';
export { accountScopedKey, debitCredits, debitKey, type DebitRequest } from './debits';
export {
  captureKey,
  captureReservation,
  findDueReservations,
  findReservation,
  holdCredits,
  releaseReservation,
  type Reservation,
  type ReservationStatus,
} from './reservations';
export {
  countLowBalanceNotices,
  findUnstartedFollowUps,
  markFollowUpsStarted,
  type FollowUp,
  type FollowUpKind,
  type FollowUpScope,
  type LowBalanceNoticeFacts,
  type TopupFacts,
} from './follow-ups';
export {
  expiryNoticeKey,
  findGrantsDueForExpiryNotice,
  recordExpiryNotice,
  type ExpiryNoticeFacts,
} from './expiry-notices';
export {
  recordUsage,
  usageFingerprint,
  usageKey,
  USAGE_KIND,
  type UsageBatch,
  type UsageEventInput,
  type UsageOutcome,
  type UsageRefusalCode,
} from './usage';
export {
  balanceAt,
  forgetUsageProperties,
  listUsageEvents,
  quoteUsage,
  type BalanceAt,
  type UsageEvent,
  type UsagePosition,
  type UsageQuote,
} from './usage-reads';
