/**
 * Application failure types that retrying cannot fix. Activities throw them as non-retryable
 * failures; workflows and retry policies recognise them by these names.
 */
export const NonRetryable = {
  AccountNotFound: 'AccountNotFound',
  SmtpPermanentError: 'SmtpPermanentError',
  OutboxMessageNotFound: 'OutboxMessageNotFound',
} as const;
