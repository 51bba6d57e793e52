import {
  chargeOutcomeUnknown,
  checkTopupPayment,
  decideTopupGrant,
  disablesAutoTopup,
  topupGrantReason,
  topupReceiptTitle,
  UNCOUNTED_FAILURE_CODES,
  type TopupToGrant,
} from '../../domain/topup-rules';
import type { PaymentIntentSummary } from '../../stripe/payment-intent';

const topup: TopupToGrant = {
  id: 'topup_7',
  accountId: 'acct_1',
  credits: 100,
  amountCents: 900,
  currency: 'usd',
  paymentIntentId: 'pi_1',
  status: 'charging',
  failureCode: null,
};

const paid: PaymentIntentSummary = {
  id: 'pi_1',
  status: 'succeeded',
  amount: 900,
  amountReceived: 900,
  currency: 'usd',
  livemode: false,
  customerId: 'cus_1',
  topupId: 'topup_7',
  accountId: 'acct_1',
  failureCode: null,
  failureMessage: null,
};

const declined: PaymentIntentSummary = {
  ...paid,
  status: 'requires_payment_method',
  amountReceived: 0,
  failureCode: 'card_declined',
  failureMessage: 'Your card was declined.',
};

describe('the payment check of a top-up', () => {
  it('when the payment is what was asked, then it grants', () => {
    expect(checkTopupPayment(topup, paid, false)).toEqual({ kind: 'grant' });
    // Before the charge was recorded, the intent's own ID is not compared.
    expect(checkTopupPayment({ ...topup, paymentIntentId: null }, paid, false)).toEqual({ kind: 'grant' });
  });

  it('when the payment did not succeed, then it failed with Stripe’s code, else its status', () => {
    expect(checkTopupPayment(topup, declined, false)).toEqual({
      kind: 'failed',
      code: 'card_declined',
      message: 'Your card was declined.',
    });
    expect(checkTopupPayment(topup, { ...declined, failureCode: null, failureMessage: null }, false)).toEqual(
      {
        kind: 'failed',
        code: 'requires_payment_method',
        message: 'the payment is requires_payment_method',
      },
    );
  });

  it('when the payment differs from what was asked, then it is refused with the code that says how', () => {
    const refusal = (intent: PaymentIntentSummary, asked = topup) => {
      const check = checkTopupPayment(asked, intent, false);
      return check.kind === 'refuse' ? check.code : check.kind;
    };
    expect(refusal({ ...paid, livemode: true })).toBe('livemode_mismatch');
    expect(refusal({ ...paid, id: 'pi_other' })).toBe('payment_intent_mismatch');
    expect(refusal({ ...paid, topupId: 'topup_8' })).toBe('topup_mismatch');
    expect(refusal({ ...paid, accountId: 'acct_2' })).toBe('topup_mismatch');
    expect(refusal({ ...paid, amountReceived: 500 })).toBe('amount_mismatch');
    expect(refusal({ ...paid, currency: 'eur' })).toBe('currency_mismatch');
    // A mismatch is refused even when the payment failed: it is not this top-up's to record.
    expect(refusal({ ...declined, topupId: 'topup_8' })).toBe('topup_mismatch');
  });
});

describe('what a reported payment does to a top-up', () => {
  it('when an open top-up is paid as asked, then it is granted (not after a failure)', () => {
    expect(decideTopupGrant(topup, paid, false)).toEqual({ action: 'grant', afterFailure: false });
    expect(decideTopupGrant({ ...topup, status: 'pending' }, paid, false)).toEqual({
      action: 'grant',
      afterFailure: false,
    });
  });

  it('when an open top-up’s payment failed, then the failure is for the workflow to record', () => {
    expect(decideTopupGrant(topup, declined, false)).toEqual({
      action: 'fail',
      code: 'card_declined',
      message: 'Your card was declined.',
    });
  });

  it('when the payment does not match, then the top-up is refused whatever its state short of settled', () => {
    for (const status of ['pending', 'charging', 'failed'] as const) {
      expect(decideTopupGrant({ ...topup, status }, { ...paid, amountReceived: 1 }, false)).toMatchObject({
        action: 'refuse',
        code: 'amount_mismatch',
      });
    }
  });

  it('when the top-up was granted or refused before, then it is answered as it stands, whatever the payment says', () => {
    expect(decideTopupGrant({ ...topup, status: 'succeeded' }, declined, false)).toEqual({
      action: 'answer_granted',
    });
    expect(decideTopupGrant({ ...topup, status: 'succeeded' }, paid, true)).toEqual({
      action: 'answer_granted',
    });
    expect(decideTopupGrant({ ...topup, status: 'refused' }, paid, false)).toEqual({
      action: 'answer_settled',
    });
  });

  it('when a failed top-up turns out paid, then it is granted after its failure (money taken becomes credits)', () => {
    const failed = { ...topup, status: 'failed' as const, failureCode: 'stripe_unavailable' };
    expect(decideTopupGrant(failed, paid, false)).toEqual({ action: 'grant', afterFailure: true });
  });

  it('when a failed top-up’s payment failed too, then it stays failed, and the decline is news only if its charge was left unknown', () => {
    const failedWith = (failureCode: string) => ({ ...topup, status: 'failed' as const, failureCode });
    expect(decideTopupGrant(failedWith('stripe_unavailable'), declined, false)).toEqual({
      action: 'fail',
      code: 'card_declined',
      message: 'Your card was declined.',
    });
    expect(decideTopupGrant(failedWith('card_declined'), declined, false)).toEqual({ action: 'keep_failed' });
    expect(decideTopupGrant(failedWith('grant_failed'), declined, false)).toEqual({ action: 'keep_failed' });
    expect(decideTopupGrant(failedWith('abandoned'), declined, false)).toEqual({ action: 'keep_failed' });
  });
});

describe('the words and counts of a top-up', () => {
  it('when a top-up is granted, then its ledger reason names the pack, and its receipt the credits', () => {
    expect(topupGrantReason('starter')).toBe('automatic top-up, pack starter');
    expect(topupGrantReason(null)).toBe('automatic top-up');
    expect(topupReceiptTitle(1200)).toBe('Automatic top-up: 1,200 credits');
  });

  it('when failures are counted, then only those that say something about the card count, up to the limit', () => {
    expect(UNCOUNTED_FAILURE_CODES).toEqual(['stripe_unavailable', 'grant_failed', 'abandoned']);
    expect(chargeOutcomeUnknown('stripe_unavailable')).toBe(true);
    expect(chargeOutcomeUnknown('card_declined')).toBe(false);
    expect(disablesAutoTopup(2, 3)).toBe(false);
    expect(disablesAutoTopup(3, 3)).toBe(true);
  });
});
