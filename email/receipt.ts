/** The receipt a customer receives for a grant: rendered once, when the grant commits. */
export interface ReceiptFacts {
  accountId: string;
  packName: string;
  credits: number;
  amountCents: number;
  currency: string;
  balanceAfter: number;
  reference: string;
}

// Stripe amounts are in the currency's smallest unit; these currencies have no minor unit.
const ZERO_DECIMAL_CURRENCIES = new Set(
  'bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf'.split(' '),
);

// Building a number format costs far more than using one: one per currency, kept.
const moneyFormats = new Map<string, Intl.NumberFormat>();

export function formatMoney(amountMinor: number, currency: string): string {
  const code = currency.toUpperCase();
  let format = moneyFormats.get(code);
  if (!format) {
    format = new Intl.NumberFormat('en-US', { style: 'currency', currency: code });
    moneyFormats.set(code, format);
  }
  const divisor = ZERO_DECIMAL_CURRENCIES.has(currency.toLowerCase()) ? 1 : 100;
  return format.format(amountMinor / divisor);
}

export function renderPurchaseReceipt(facts: ReceiptFacts): { subject: string; text: string } {
  const credits = facts.credits.toLocaleString('en-US');
  return {
    subject: `Receipt: ${credits} credits added to your account`,
    text: [
      `Thank you for your purchase.`,
      ``,
      `Item:        ${facts.packName}`,
      `Credits:     ${credits}`,
      `Amount paid: ${formatMoney(facts.amountCents, facts.currency)}`,
      `New balance: ${facts.balanceAfter.toLocaleString('en-US')} credits`,
      `Account:     ${facts.accountId}`,
      `Reference:   ${facts.reference}`,
    ].join('\n'),
  };
}
