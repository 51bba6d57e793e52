import { z } from 'zod';

/**
 * Stripe's convention: an answer to a repeated request (the same idempotency key) is the first
 * answer again, status and body, and says it is a replay with this header. A first answer does
 * not carry it, so a client can tell whether its request did the work or found it done.
 */
export const REPLAYED_HEADER = 'Idempotent-Replayed';

/** The header as the OpenAPI document shows it on the success answers of a route that replays. */
export const replayedHeaders = (replays: string) =>
  z.object({
    [REPLAYED_HEADER]: z
      .literal('true')
      .optional()
      .meta({
        description:
          `\`true\` when this answer is a replay (${replays}): the first answer's status and body, unchanged, ` +
          'whatever happened since. Absent on the first answer.',
      }),
  });
