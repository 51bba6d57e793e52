import type { Sql } from '../db/client';
import type { InvoicePaymentLookup } from './invoice-payments';
import type { Mailer } from './mailer';

/** What every activity factory receives: real services in the worker and in the tests alike. */
export interface ActivityDependencies {
  sql: Sql;
  mailer: Mailer;
  /** Null without a Stripe key: payments then match purchases only by what events carry. */
  invoicePayments: InvoicePaymentLookup | null;
  config: { stripe: { livemode: boolean }; emailDomain: string };
}
