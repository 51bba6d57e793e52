import { randomUUID } from 'node:crypto';
import { ADMIN_KEY_NAME, startHarness, type Harness } from '../support/harness';

interface AuditEntry {
  id: number;
  at: string;
  action: string;
  subject: string;
}

describe('the audit log', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  const auditOf = async (subject: string) =>
    (await h.api('GET', `/v1/audit?subject=${subject}`)).body.entries as AuditEntry[];

  async function grant(accountId: string, body: Record<string, unknown> = {}) {
    const answer = await h.api('POST', `/v1/accounts/${accountId}/grants`, {
      amount: 200,
      reason: 'launch promotion',
      idempotencyKey: `promo-${randomUUID()}`,
      ...body,
    });
    expect(answer.status).toBe(201);
    return answer.body as { id: number };
  }

  it('when an admin grants credits and voids the rest of the grant, then both are audited with the key name, before and after', async () => {
    const account = await h.newAccount();
    const made = await grant(account.id, { category: 'paid', amount: 300, reason: 'goodwill' });
    await h.api('POST', `/v1/accounts/${account.id}/debits`, {
      amount: 120,
      idempotencyKey: 'job-1',
      reason: 'usage',
    });
    const voided = await h.api('POST', `/v1/accounts/${account.id}/grants/${made.id}/void`, {
      reason: 'granted by mistake',
    });
    expect(voided.status).toBe(200);

    const entries = await auditOf(`grant:${made.id}`);
    expect(entries).toEqual([
      {
        id: expect.any(Number),
        at: expect.any(String),
        actor: ADMIN_KEY_NAME,
        action: 'grant.voided',
        subject: `grant:${made.id}`,
        before: {
          accountId: account.id,
          balance: 180,
          grant: expect.objectContaining({ id: made.id, remaining: 180, status: 'live' }),
        },
        after: {
          accountId: account.id,
          balance: 0,
          grant: expect.objectContaining({ id: made.id, remaining: 0, status: 'voided' }),
        },
        reason: 'granted by mistake',
      },
      {
        id: expect.any(Number),
        at: expect.any(String),
        actor: ADMIN_KEY_NAME,
        action: 'grant.created',
        subject: `grant:${made.id}`,
        before: { accountId: account.id, balance: 0 },
        after: {
          accountId: account.id,
          balance: 300,
          grant: expect.objectContaining({
            id: made.id,
            amount: 300,
            category: 'paid',
            source: 'manual',
            createdBy: ADMIN_KEY_NAME,
          }),
        },
        reason: 'goodwill',
      },
    ]);
    const [newer, older] = entries as [AuditEntry, AuditEntry];
    expect(newer.id).toBeGreaterThan(older.id);
    expect(Date.parse(newer.at)).toBeGreaterThanOrEqual(Date.parse(older.at));
  });

  it('when a grant request is replayed or a voided grant is voided again, then nothing more is recorded', async () => {
    const account = await h.newAccount();
    const body = { amount: 50, reason: 'promo', idempotencyKey: `promo-${randomUUID()}` };
    const first = await h.api('POST', `/v1/accounts/${account.id}/grants`, body);
    expect(await h.api('POST', `/v1/accounts/${account.id}/grants`, body)).toEqual(first);
    const voidIt = () =>
      h.api('POST', `/v1/accounts/${account.id}/grants/${first.body.id}/void`, { reason: 'ended' });
    const voids = await Promise.all([voidIt(), voidIt(), voidIt()]);
    expect(voids.map((answer) => answer.status)).toEqual([200, 200, 200]);
    expect((await auditOf(`grant:${first.body.id}`)).map((entry) => entry.action)).toEqual([
      'grant.voided',
      'grant.created',
    ]);
  });

  it('when an admin creates, changes, rotates the secret of and deletes a webhook endpoint, then each is audited in its own transaction, never with a secret', async () => {
    const created = await h.api('POST', '/v1/webhook-endpoints', {
      url: 'http://127.0.0.1:9/audited',
      eventTypes: ['balance.low'],
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const subject = `webhook_endpoint:${id}`;
    const paused = await h.api('PATCH', `/v1/webhook-endpoints/${id}`, {
      enabled: false,
      description: 'paused',
    });
    expect(paused.status).toBe(200);
    const rotated = await h.api('POST', `/v1/webhook-endpoints/${id}/rotate-secret`, { overlapSeconds: 60 });
    expect(rotated.status).toBe(200);
    expect((await h.api('DELETE', `/v1/webhook-endpoints/${id}`)).status).toBe(200);
    // What failed changed nothing, and records nothing.
    expect((await h.api('PATCH', `/v1/webhook-endpoints/${id}`, { enabled: true })).status).toBe(404);
    expect((await h.api('DELETE', `/v1/webhook-endpoints/${id}`)).status).toBe(404);

    const entries = await auditOf(subject);
    const shown = (endpoint: Record<string, unknown>) => {
      const { secret: _secret, ...rest } = endpoint;
      return rest;
    };
    expect(entries).toEqual([
      expect.objectContaining({
        actor: ADMIN_KEY_NAME,
        action: 'webhook_endpoint.deleted',
        before: shown(rotated.body),
        after: null,
      }),
      expect.objectContaining({
        actor: ADMIN_KEY_NAME,
        action: 'webhook_endpoint.secret_rotated',
        before: paused.body,
        after: { ...shown(rotated.body), overlapSeconds: 60 },
      }),
      expect.objectContaining({
        actor: ADMIN_KEY_NAME,
        action: 'webhook_endpoint.updated',
        before: shown(created.body),
        after: paused.body,
      }),
      expect.objectContaining({
        actor: ADMIN_KEY_NAME,
        action: 'webhook_endpoint.created',
        before: null,
        after: shown(created.body),
        reason: null,
      }),
    ]);
    // now() is the transaction's start: an entry stamped as its change was written in its transaction.
    const [deleted, rotation, update, creation] = entries as [AuditEntry, AuditEntry, AuditEntry, AuditEntry];
    expect([creation.at, update.at, rotation.at]).toEqual([
      created.body.createdAt,
      paused.body.updatedAt,
      rotated.body.updatedAt,
    ]);
    expect(deleted.at >= rotation.at).toBe(true);
    const written = JSON.stringify(entries);
    for (const secret of [created.body.secret as string, rotated.body.secret as string]) {
      expect(secret).toMatch(/^whsec_/);
      expect(written).not.toContain(secret);
      expect(written).not.toContain(secret.slice('whsec_'.length));
    }
    expect(written).not.toContain('whsec_');
  });

  it('when anyone tries to change, delete or empty the audit log, then the database refuses', async () => {
    const account = await h.newAccount();
    const made = await grant(account.id);
    const [entry] = (await auditOf(`grant:${made.id}`)) as [AuditEntry];
    await expect(h.sql`UPDATE audit_log SET actor = 'someone else' WHERE id = ${entry.id}`).rejects.toThrow(
      /append-only: UPDATE is refused/,
    );
    await expect(h.sql`DELETE FROM audit_log WHERE id = ${entry.id}`).rejects.toThrow(
      /append-only: DELETE is refused/,
    );
    await expect(h.sql`TRUNCATE audit_log`).rejects.toThrow(/append-only: TRUNCATE is refused/);
    expect(await auditOf(`grant:${made.id}`)).toEqual([entry]);
  });

  it('when the audit log is paged, then each cursor leads to older entries and none is seen twice', async () => {
    const account = await h.newAccount();
    const grants = [await grant(account.id), await grant(account.id), await grant(account.id)];
    const ours = new Set(grants.map((made) => `grant:${made.id}`));
    const seen: number[] = [];
    let cursor: string | null = null;
    // Other test files write entries too; ours are the newest of this account, so a few pages find them.
    for (let page = 0; page < 50 && seen.length < 3; page += 1) {
      const answer: { status: number; body: any } = await h.api(
        'GET',
        `/v1/audit?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`,
      );
      expect(answer.status).toBe(200);
      expect(answer.body.entries.length).toBeLessThanOrEqual(2);
      for (const entry of answer.body.entries) if (ours.has(entry.subject)) seen.push(entry.id);
      cursor = answer.body.nextCursor;
      if (cursor === null) break;
    }
    expect(seen).toHaveLength(3);
    expect([...seen].sort((a, b) => b - a)).toEqual(seen);
    expect(new Set(seen).size).toBe(3);
    expect((await h.api('GET', '/v1/audit?subject=nonsense')).status).toBe(400);
  });
});
