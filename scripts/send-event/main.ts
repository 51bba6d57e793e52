import { parseArgs } from 'node:util';
import { loadPackCatalog } from '../../db/catalog/packs';
import { loadPlanCatalog } from '../../db/catalog/plans';
import { deliverEvent } from '../../stripe/fixtures/index';
import {
  asyncSucceededCommand,
  checkoutExpiredCommand,
  checkoutFailedCommand,
  duplicateCommand,
  purchaseCommand,
  purchaseDelayedCommand,
} from './checkout';
import {
  DEFAULT_WEBHOOK_URL,
  text,
  UsageError,
  webhookSecretFrom,
  webhookUrlFrom,
  type Delivery,
  type Options,
  type Plan,
  type Subcommand,
  type Values,
} from './options';
import { disputeCommand, refundCommand } from './payments';
import { rawCommand } from './raw';
import {
  invoiceFailedCommand,
  renewCommand,
  subscribeCommand,
  subscriptionCancelCommand,
  subscriptionUpdateCommand,
} from './subscriptions';

/**
 * Sends realistic, correctly signed Stripe events to a running webhook (Stripe's own CLI cannot
 * reach Stripe offline). One subcommand per scenario; each builds a plan (the events to send, in
 * order, each any number of times at once). The commands of a family of events live in its own
 * module (./checkout, ./subscriptions, ./payments, ./raw), the Stripe objects in stripe/fixtures/;
 * a new event is one more entry in SUBCOMMANDS below.
 *
 *   npm run send-event -- purchase --account demo --pack growth
 */

/** Every command, in the order the help lists them. */
export const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  purchase: purchaseCommand,
  'purchase-delayed': purchaseDelayedCommand,
  'async-succeeded': asyncSucceededCommand,
  duplicate: duplicateCommand,
  'checkout-failed': checkoutFailedCommand,
  'checkout-expired': checkoutExpiredCommand,
  subscribe: subscribeCommand,
  renew: renewCommand,
  'invoice-failed': invoiceFailedCommand,
  'subscription-update': subscriptionUpdateCommand,
  'subscription-cancel': subscriptionCancelCommand,
  refund: refundCommand,
  dispute: disputeCommand,
  raw: rawCommand,
};

const commonOptions = {
  url: { type: 'string' },
  secret: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} satisfies Options;

const commonHelp = [
  `--url URL          the webhook (default: $WEBHOOK_URL, else ${DEFAULT_WEBHOOK_URL})`,
  "--secret whsec_…   signing secret (default: the first of $STRIPE_WEBHOOK_SECRET, else the dev stack's)",
  '-h, --help         this help',
];

/** Own keys only: `constructor` or `__proto__` is not a command. */
const commandNamed = (name: string): Subcommand | undefined =>
  Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined;

function usage(name?: string): string {
  const indent = (lines: string[]) => lines.map((line) => `  ${line}`).join('\n');
  const command = name ? commandNamed(name) : undefined;
  if (name && command) {
    return `usage: npm run send-event -- ${name} [options]\n\n${command.summary}\n\n${indent([
      ...command.help,
      ...commonHelp,
    ])}\n`;
  }
  const width = Math.max(...Object.keys(SUBCOMMANDS).map((key) => key.length));
  return (
    'usage: npm run send-event -- <command> [options]\n\n' +
    'Sends signed Stripe events to a running webhook and prints what it answered.\n\n' +
    `commands:\n${indent(
      Object.entries(SUBCOMMANDS).map(([key, entry]) => `${key.padEnd(width)}  ${entry.summary}`),
    )}\n\n` +
    `common options:\n${indent(commonHelp)}\n\n` +
    'npm run send-event -- <command> --help lists the options of a command.\n'
  );
}

const seeHelp = (name: string) => `see: npm run send-event -- ${name} --help\n`;

/** Whether every copy was acknowledged (2xx), and whether a workflow took the event. */
async function deliver(
  url: string,
  delivery: Delivery,
  secret: string,
): Promise<{ ok: boolean; workflow: boolean }> {
  if (delivery.delayMs) await new Promise((resolve) => setTimeout(resolve, delivery.delayMs));
  const { event } = delivery;
  process.stdout.write(`→ ${event.type} ${event.id}${delivery.copies > 1 ? ` ×${delivery.copies}` : ''}\n`);
  const answers = await Promise.all(
    Array.from({ length: delivery.copies }, () => deliverEvent(url, event, secret)),
  );
  let ok = true;
  let workflow = false;
  for (const answer of answers) {
    ok &&= answer.status >= 200 && answer.status < 300;
    const status = (answer.body as { status?: unknown } | null)?.status;
    workflow ||= status === 'started' || status === 'duplicate';
    const body = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    process.stdout.write(`← ${answer.status} ${body}\n`);
  }
  return { ok, workflow };
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const command = commandNamed(name);
  if (!command) {
    process.stderr.write(`unknown command ${name}\n\n${usage()}`);
    return 2;
  }
  let values: Values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { ...command.options, ...commonOptions },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${seeHelp(name)}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(usage(name));
    return 0;
  }

  let plan: Plan;
  try {
    plan = command.build(values, { packs: loadPackCatalog().packs, plans: loadPlanCatalog().plans });
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n${seeHelp(name)}`);
    return 2;
  }
  const url = webhookUrlFrom(text(values, 'url'));
  const secret = webhookSecretFrom(text(values, 'secret'));
  if (plan.sessionId) process.stdout.write(`session ${plan.sessionId}\n`);

  let workflows = false;
  for (const delivery of plan.deliveries) {
    let answered: { ok: boolean; workflow: boolean };
    try {
      answered = await deliver(url, delivery, secret);
    } catch (error) {
      const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      process.stderr.write(`could not reach ${url}: ${why} (is the API running? \`npm run dev\`)\n`);
      return 1;
    }
    // A later event of the plan means nothing if Stripe would have retried this one.
    if (!answered.ok) return 1;
    workflows ||= answered.workflow;
  }
  if (plan.sessionId && workflows) {
    process.stdout.write(`purchase: GET ${new URL(url).origin}/v1/purchases/${plan.sessionId}\n`);
  }
  if (plan.next) process.stdout.write(`when the payment settles: ${plan.next}\n`);
  for (const note of plan.notes ?? []) process.stdout.write(`${note}\n`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
