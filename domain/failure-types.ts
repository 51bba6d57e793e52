import { ERROR_CATALOGUE, type ErrorCode } from './error-codes';

/** `account_not_found` → `AccountNotFound`, as a type. */
type Pascal<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Capitalize<Head>}${Pascal<Tail>}`
  : Capitalize<S>;

/** The Temporal failure type of an error code: its name in PascalCase. */
export type FailureTypeOf<C extends ErrorCode> = Pascal<C>;

/** The Temporal failure type of an error code (see domain/error-codes.ts): `account_not_found` → `AccountNotFound`. */
export const failureTypeOf = <C extends ErrorCode>(code: C): FailureTypeOf<C> =>
  code
    .split('_')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('') as FailureTypeOf<C>;

/**
 * The failure type of every code of the catalogue, by name: `FailureType.StripeRefused`. The
 * worker's interceptor gives an activity's `BillingError` the type of its code; workflows and
 * retry policies recognise failures through these, never through a string of their own.
 */
export const FailureType = Object.fromEntries(
  (Object.keys(ERROR_CATALOGUE) as ErrorCode[]).map((code) => [failureTypeOf(code), failureTypeOf(code)]),
) as { readonly [C in ErrorCode as FailureTypeOf<C>]: FailureTypeOf<C> };

const CODE_OF_FAILURE_TYPE: ReadonlyMap<string, ErrorCode> = new Map(
  (Object.keys(ERROR_CATALOGUE) as ErrorCode[]).map((code) => [failureTypeOf(code), code]),
);

/** The error code a Temporal failure type stands for (`AccountNotFound` → `account_not_found`), if any. */
export const errorCodeOfFailureType = (type: string | undefined): ErrorCode | null =>
  (type === undefined ? undefined : CODE_OF_FAILURE_TYPE.get(type)) ?? null;
