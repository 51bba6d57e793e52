import type { PayloadKeyRing } from '../config/payload-codec';
import type { Sql } from '../db/client';
import type { BusinessMetrics } from './business-metrics';
import type { InvoicePaymentLookup } from '../stripe/invoice-payments';
import type { Mailer } from '../email/mailer';
import type { OutboundWebhookSettings } from './outbound-webhooks/dispatcher';
import type { HostResolver } from './outbound-webhooks/pinned-request';
import type { RetentionSettings } from './maintenance/retention';
import type { ReconcileDependencies } from './reconciliation/reconcile';
import type { TopupDependencies } from './topups/topup';
import type { StartWorkflowOnce } from '../temporal/follow-ups';

/** What the activities may ask of Temporal itself. */
export interface WorkflowDirectory {
  /** Whether the workflow with this ID has a run still open. */
  isRunning(workflowId: string): Promise<boolean>;
  /**
   * Starts a workflow once (temporal/start-once.ts): how the maintenance sweep starts balance
   * follow-ups. Absent where a worker is built without a Temporal client (some tests).
   */
  startOnce?: StartWorkflowOnce;
}

/**
 * Everything the activities of all rooms use, as the worker wires it. Each room's factory declares
 * the part it uses (a `Pick` of this, beside the factory), so a test builds one room's activities
 * with just what that room uses. The factories are generic in their argument so that the whole
 * of it may be passed too (the worker does): what a room does not use is simply not read.
 */
export interface ActivityDependencies {
  sql: Sql;
  mailer: Mailer;
  /** Null without a Stripe key: payments then match purchases only by what events carry. */
  invoicePayments: InvoicePaymentLookup | null;
  workflows: WorkflowDirectory;
  /** Counts business events (credits, emails, reconciliation); without it nothing is counted. */
  metrics?: BusinessMetrics;
  /** Stripe's Events API and Temporal's starts, for reconciliation; without it, runs fail at once. */
  reconcile?: ReconcileDependencies | null;
  /** Stripe for off-session top-ups; without it, every top-up fails (and says why). */
  topups?: TopupDependencies | null;
  /** Resolves webhook endpoints' names (the system resolver when absent); tests script one. */
  resolveHost?: HostResolver;
  config: {
    stripe: { livemode: boolean };
    emailDomain: string;
    outbox: { sweepAfterMs: number; giveUpAfterMs: number };
    /** Outbound webhook delivery; the defaults when absent. */
    outboundWebhooks?: OutboundWebhookSettings;
    /**
     * How long before its expiry a grant's notice goes out (CREDIT_EXPIRY_NOTICE); null: none
     * do. Absent: the default, DEFAULT_CREDIT_EXPIRY_NOTICE.
     */
    creditExpiryNoticeMs?: number | null;
    /** The key ring that opens endpoint secrets to sign deliveries (TEMPORAL_PAYLOAD_KEYS). */
    secretKeys?: PayloadKeyRing;
    /** How long finished outbound events, emails and rejected events are kept; the defaults when absent. */
    retention?: RetentionSettings;
  };
}

/** The configuration part of the dependencies, for factories that pick from it. */
export type ActivityConfig = ActivityDependencies['config'];
