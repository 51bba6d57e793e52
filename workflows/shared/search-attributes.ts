import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes every billing workflow sets, so an operator can find any unfinished
 * purchase in the Temporal UI. A server must know them before workflows use them: the dev stack
 * and the tests register them, and docs/production.md shows the command for a production namespace.
 */
export const AccountId = defineSearchAttributeKey('AccountId', SearchAttributeType.KEYWORD);
export const PurchaseStatus = defineSearchAttributeKey('PurchaseStatus', SearchAttributeType.KEYWORD);
export const StripeEventType = defineSearchAttributeKey('StripeEventType', SearchAttributeType.KEYWORD);
/** Stage of the subscription, invoice, refund, dispute and closed-checkout workflows. */
export const BillingStatus = defineSearchAttributeKey('BillingStatus', SearchAttributeType.KEYWORD);

/** Name and CLI type of each attribute, for `temporal operator search-attribute create`. */
export const SEARCH_ATTRIBUTES: ReadonlyArray<{ name: string; cliType: 'Keyword' }> = [
  AccountId,
  PurchaseStatus,
  StripeEventType,
  BillingStatus,
].map((key) => ({ name: key.name, cliType: 'Keyword' }));
