/** Turns values into stored bytes and back. */
export interface Codec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/**
 * A JSON codec (UTF-8). `parse` may check or upgrade the decoded value; its error is thrown as is.
 * The default trusts the stored shape (the scheduler is the only writer).
 */
export function jsonCodec<T>(parse: (value: unknown) => T = (value) => value as T): Codec<T> {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder("utf-8", { fatal: true });
  return {
    encode: (value) => encoder.encode(JSON.stringify(value)),
    decode: (bytes) => {
      let value: unknown;
      try {
        value = JSON.parse(decoder.decode(bytes));
      } catch (err) {
        throw new SyntaxError(`stored value is not UTF-8 JSON: ${(err as Error).message}`, {
          cause: err,
        });
      }
      return parse(value);
    },
  };
}
