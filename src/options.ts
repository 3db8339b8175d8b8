/**
 * The one check behind every integer option (durations in ms, sizes, counts): a safe integer within its bounds, or
 * a RangeError naming the owner and the option. Options are checked once, at construction.
 */
export function integerOption(
  owner: string,
  name: string,
  value: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
) {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `in ${min}..${max}`;
    throw new RangeError(`${owner} ${name} must be an integer ${range}`);
  }
  return value;
}
