import type { Payload } from '@temporalio/common';
import { historyToJSON, type History } from '@temporalio/common/lib/proto-utils';

/**
 * What someone who reads a workflow's history without the codec (Temporal's database, its UI
 * without a codec server, `temporal workflow show`) can see, and helpers to look for personal
 * data in it in any spelling.
 */

const isBytes = (value: unknown): value is Uint8Array => value instanceof Uint8Array;

function isPayload(value: object): value is Payload {
  const { metadata, data } = value as { metadata?: unknown; data?: unknown };
  return (
    typeof metadata === 'object' &&
    metadata !== null &&
    Object.values(metadata).every(isBytes) &&
    (data === undefined || data === null || isBytes(data))
  );
}

/** Walks a history; `searchAttributes` are left out when asked (they are plain by nature). */
function walk(
  value: unknown,
  path: string,
  visit: (value: unknown, path: string) => boolean | void,
  skipSearchAttributes: boolean,
): void {
  if (visit(value, path) === false || value === null || typeof value !== 'object' || isBytes(value)) return;
  for (const [key, child] of Object.entries(value)) {
    if (skipSearchAttributes && key === 'searchAttributes') continue;
    walk(child, `${path}.${key}`, visit, skipSearchAttributes);
  }
}

/**
 * What the SDK itself writes into its markers beside a result: a local activity's type, attempt
 * and times, a patch's ID. Never the service's data, so never encoded (`readableText` still
 * shows them to the checks for personal data).
 */
const SDK_MARKER_DETAILS = /\.markerRecordedEventAttributes\.details\.(data|patch-data)(\.|$)/;

/** Every payload of the history outside its search attributes, with where it is (SDK marker details aside). */
export function payloadsOf(history: History): Array<{ path: string; payload: Payload }> {
  const found: Array<{ path: string; payload: Payload }> = [];
  walk(
    history,
    'history',
    (value, path) => {
      if (SDK_MARKER_DETAILS.test(path)) return false;
      if (
        value &&
        typeof value === 'object' &&
        !isBytes(value) &&
        !Array.isArray(value) &&
        isPayload(value)
      ) {
        found.push({ path, payload: value });
        return false;
      }
      return true;
    },
    true,
  );
  return found;
}

/** The search attributes the history sets, by name, decoded from their (plain JSON) payloads. */
export function searchAttributesOf(history: History): Record<string, unknown[]> {
  const attributes: Record<string, unknown[]> = {};
  for (const event of history.events ?? []) {
    const fields =
      event.workflowExecutionStartedEventAttributes?.searchAttributes?.indexedFields ??
      event.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ??
      {};
    for (const [name, payload] of Object.entries(fields)) {
      const text = payload.data ? Buffer.from(payload.data).toString('utf8') : 'null';
      (attributes[name] ??= []).push(JSON.parse(text) as unknown);
    }
  }
  return attributes;
}

/**
 * The history as a reader without the codec has it: the strings of its protobuf JSON (what the CLI
 * and the UI's JSON view show, bytes in base64), and every byte field read as UTF-8 and Latin-1.
 */
export function readableText(history: History, options: { withSearchAttributes: boolean }): string {
  const parts: string[] = [];
  const skip = !options.withSearchAttributes;
  walk(
    JSON.parse(historyToJSON(history)),
    '',
    (value) => void (typeof value === 'string' && parts.push(value)),
    skip,
  );
  walk(
    history,
    '',
    (value) => {
      if (isBytes(value))
        parts.push(Buffer.from(value).toString('utf8'), Buffer.from(value).toString('latin1'));
    },
    skip,
  );
  return parts.join('\n');
}

/** A value as it may be spelled in a history: as is, JSON-escaped, hex, and base64 at each alignment. */
export function spellingsOf(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const spellings = new Set([value, JSON.stringify(value).slice(1, -1), bytes.toString('hex')]);
  for (let shift = 0; shift < 3; shift += 1) {
    // Only the base64 characters that depend on the value's bytes alone, whatever surrounds it.
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64');
    const core = encoded.slice(shift === 0 ? 0 : 4, -4);
    if (core.length >= 8) {
      spellings.add(core);
      spellings.add(core.replaceAll('+', '-').replaceAll('/', '_'));
    }
  }
  return [...spellings];
}

/** Which of `secrets` appear in `text` in any spelling: `[]` when none does. */
export function spelledIn(text: string, secrets: readonly string[]): string[] {
  const lower = text.toLowerCase();
  return secrets.flatMap((secret) =>
    spellingsOf(secret)
      .filter((spelling) => text.includes(spelling) || lower.includes(spelling.toLowerCase()))
      .map((spelling) => `${secret} (as ${spelling})`),
  );
}
