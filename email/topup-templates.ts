import type { RenderedEmail } from './templates';
import { formatMoney } from './receipt';
import { chargeOutcomeUnknown } from '../domain/topup-rules';

/** The low-balance and top-up notices, rendered when the change they report commits. */

const credits = (value: number) => value.toLocaleString('en-US');

export function renderLowBalanceEmail(facts: {
  accountId: string;
  available: number;
  threshold: number;
  autoTopup: boolean;
}): RenderedEmail {
  return {
    subject: 'Your credit balance is running low',
    text: [
      `Your account has ${credits(facts.available)} credits available, below the ${credits(facts.threshold)} you asked us to watch for.`,
      facts.autoTopup
        ? `Automatic top-up is on: we will add credits from your saved card when the balance reaches its threshold.`
        : `Buy more credits to keep using the service without interruption.`,
      ``,
      `Account:     ${facts.accountId}`,
    ].join('\n'),
  };
}

export function renderTopupFailedEmail(facts: {
  accountId: string;
  topupId: string;
  credits: number;
  amountCents: number;
  currency: string;
  failureCode: string;
  recoveryUrl: string | null;
  disabled: boolean;
  maxConsecutiveFailures: number;
}): RenderedEmail {
  const price = formatMoney(facts.amountCents, facts.currency);
  if (chargeOutcomeUnknown(facts.failureCode)) {
    // The charge may have gone through: nothing here may invite a second payment.
    return {
      subject: 'Your automatic top-up is not finished yet',
      text: [
        `We tried to add ${credits(facts.credits)} credits for ${price}, but could not finish it yet (${facts.failureCode}).`,
        `If you were charged, the credits will be added and a receipt sent; you do not need to pay again.`,
        ``,
        `Account:     ${facts.accountId}`,
        `Reference:   ${facts.topupId}`,
      ].join('\n'),
    };
  }
  const why =
    facts.failureCode === 'authentication_required'
      ? 'your bank asked you to confirm the payment'
      : facts.failureCode === 'no_saved_card'
        ? 'no card is saved for automatic payments'
        : `the payment was declined (${facts.failureCode})`;
  return {
    subject: facts.disabled
      ? 'Automatic top-up failed and is now turned off'
      : 'Your automatic top-up did not go through',
    text: [
      `We tried to add ${credits(facts.credits)} credits for ${price}, but ${why}. No credits were added and nothing was charged.`,
      ...(facts.recoveryUrl ? [``, `Complete the purchase yourself: ${facts.recoveryUrl}`] : []),
      ...(facts.disabled
        ? [
            ``,
            `After ${facts.maxConsecutiveFailures} failed attempts in a row, automatic top-up is now off. Turn it on again once your card is up to date.`,
          ]
        : []),
      ``,
      `Account:     ${facts.accountId}`,
      `Reference:   ${facts.topupId}`,
    ].join('\n'),
  };
}
