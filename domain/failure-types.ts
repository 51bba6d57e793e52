/** The Temporal failure type of an error code (see domain/errors.ts): `account_not_found` → `AccountNotFound`. */
export const failureTypeOf = (code: string): string =>
  code
    .split('_')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

/**
 * Failure types that retrying cannot fix. The worker's interceptor turns errors with these codes
 * into non-retryable failures of these types; workflows and retry policies recognise them by name.
 */
export const NonRetryable = {
  AccountNotFound: failureTypeOf('account_not_found'),
  SmtpPermanentError: failureTypeOf('smtp_permanent_error'),
  OutboxMessageNotFound: failureTypeOf('outbox_message_not_found'),
} as const;
