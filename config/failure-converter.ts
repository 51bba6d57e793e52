import { DefaultFailureConverter } from '@temporalio/common';

/**
 * The failure converter of every Temporal client and worker of the service, loaded by path (see
 * `FAILURE_CONVERTER_PATH` in ./payload-codec.ts) because the workflow bundle needs it too.
 *
 * A failure's message and stack trace are plain text in Temporal's history unless they are
 * encoded: an SMTP server's refusal, for one, usually quotes the recipient's address. With
 * `encodeCommonAttributes` both travel as a payload, which the payload codec encrypts; the
 * failure's type (`SmtpPermanentError`, `AccountNotFound`…) and whether it may be retried stay
 * readable, so operators can still tell failures apart without the codec.
 *
 * Imported in the workflow sandbox: this module may import nothing but `@temporalio/common`.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
