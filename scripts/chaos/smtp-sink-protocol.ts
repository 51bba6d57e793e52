/** Messages between the chaos driver and its SMTP sink process (Node IPC). */

/** Where an SMTP exchange is refused while the sink refuses: each in turn. */
export const REFUSAL_STAGES = ['connect', 'rcpt', 'data'] as const;
export type RefusalStage = (typeof REFUSAL_STAGES)[number];

export type SinkReport =
  | { type: 'listening'; port: number }
  /** A message the sink answered 250 to, reported before that answer is sent. */
  | { type: 'accepted'; messageId: string | null; to: string; at: number }
  | { type: 'refused'; stage: RefusalStage; at: number };

export type SinkCommand = { type: 'refuse'; on: boolean };
