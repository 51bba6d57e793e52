/** Converts a database int8 (a string from the driver) or a bigint to a JS number, refusing to round. */
export function toSafeInteger(value: string | number | bigint, what = 'value'): number {
  const asNumber = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(asNumber) || (typeof value !== 'number' && BigInt(value) !== BigInt(asNumber))) {
    throw new RangeError(`${what} ${String(value)} is not a safe integer`);
  }
  return asNumber;
}
