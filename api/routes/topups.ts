import { Router } from 'express';
import type { ApiConfig } from '../../config/env';
import { priceSale } from '../../db/catalog/packs';
import type { Sql } from '../../db/client';
import {
  deleteLowBalanceSettings,
  findLowBalanceSettings,
  saveLowBalanceSettings,
  type LowBalanceSettings,
} from '../../db/topups/low-balance';
import {
  findStripeCustomer,
  findTopupSettings,
  listTopups,
  saveTopupSettings,
  type TopupSettings,
} from '../../db/topups/topups';
import { BillingError } from '../../domain/errors';
import { requireRole } from '../auth';
import { errors, parseOrThrow } from '../errors';
import { accountParams } from '../schemas';
import { requireAccount } from './accounts';
import { autoTopupBody, lowBalanceBody } from './topup-schemas';

const presentLowBalance = (settings: LowBalanceSettings) => ({
  accountId: settings.accountId,
  threshold: settings.threshold,
  armed: settings.armed,
  notices: settings.notices,
  lastNoticeAt: settings.lastNoticeAt?.toISOString() ?? null,
});

const notSet = (code: string, what: string) =>
  new BillingError(404, code, `No ${what} is set for this account.`);

export function topupsRouter(deps: { sql: Sql; config: Pick<ApiConfig, 'customCredits'> }): Router {
  const { sql, config } = deps;
  const router = Router();

  router.get('/v1/accounts/:id/low-balance', requireRole('read'), async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    await requireAccount(sql, id);
    const settings = await findLowBalanceSettings(sql, id);
    if (!settings) throw notSet('low_balance_not_set', 'low-balance threshold');
    res.json(presentLowBalance(settings));
  });

  router.put('/v1/accounts/:id/low-balance', requireRole('write'), async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    const body = parseOrThrow(lowBalanceBody, req.body);
    await requireAccount(sql, id);
    res.json(presentLowBalance(await saveLowBalanceSettings(sql, id, body.threshold)));
  });

  router.delete('/v1/accounts/:id/low-balance', requireRole('write'), async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    await requireAccount(sql, id);
    await deleteLowBalanceSettings(sql, id);
    res.status(204).end();
  });

  async function presentAutoTopup(settings: TopupSettings) {
    const [recent, customer] = await Promise.all([
      listTopups(sql, settings.accountId, 10),
      findStripeCustomer(sql, settings.accountId),
    ]);
    return {
      accountId: settings.accountId,
      enabled: settings.enabled,
      threshold: settings.threshold,
      packId: settings.packId,
      credits: settings.credits,
      amountCents: settings.amountCents,
      currency: settings.currency,
      monthlyCapCents: settings.monthlyCapCents,
      usedThisMonthCents: settings.usedThisMonthCents,
      maxConsecutiveFailures: settings.maxConsecutiveFailures,
      consecutiveFailures: settings.consecutiveFailures,
      disabledReason: settings.disabledReason,
      disabledAt: settings.disabledAt?.toISOString() ?? null,
      lastSkippedReason: settings.lastSkippedReason,
      savedCard: customer !== null,
      recentTopups: recent.map((topup) => ({
        id: topup.id,
        status: topup.status,
        credits: topup.credits,
        amountCents: topup.amountCents,
        currency: topup.currency,
        paymentIntentId: topup.paymentIntentId,
        failureCode: topup.failureCode,
        recoveryUrl: topup.recoveryUrl,
        createdAt: topup.createdAt.toISOString(),
      })),
    };
  }

  router.get('/v1/accounts/:id/auto-topup', requireRole('read'), async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    await requireAccount(sql, id);
    const settings = await findTopupSettings(sql, id);
    if (!settings) throw notSet('auto_topup_not_set', 'automatic top-up');
    res.json(await presentAutoTopup(settings));
  });

  router.put('/v1/accounts/:id/auto-topup', requireRole('write'), async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    const body = parseOrThrow(autoTopupBody, req.body);
    await requireAccount(sql, id);
    // The price is the server's: the catalog's for a pack, the configured unit price otherwise.
    const { name: _name, ...sale } = await priceSale(sql, body, config.customCredits);
    if (body.monthlyCapCents < sale.amountCents) {
      throw errors.invalidValue('monthlyCapCents', `must allow at least one top-up (${sale.amountCents})`);
    }
    const saved = await saveTopupSettings(sql, id, {
      enabled: body.enabled,
      threshold: body.threshold,
      monthlyCapCents: body.monthlyCapCents,
      maxConsecutiveFailures: body.maxConsecutiveFailures,
      ...sale,
    });
    res.json(await presentAutoTopup(saved));
  });

  return router;
}
