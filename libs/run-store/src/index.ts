export {
  InvalidKeyError,
  KeyExistsError,
  listLatest,
  matchesFilter,
  normalizeFilter,
  RevisionMismatchError,
  StoreClosedError,
  StoreUnavailableError,
  validateKey,
  ValueTooLargeError,
  type Change,
  type Entry,
  type KeyChange,
  type KeyRevision,
  type KeyValueStore,
  type Watch,
} from "./store.js";
export { jsonCodec, type Codec } from "./codec.js";
export { updateWithRetry, type UpdateOutcome, type UpdateWithRetryOptions } from "./retry.js";
export { MemoryKeyValueStore, type MemoryKeyValueStoreOptions } from "./memory.js";
export { NatsKeyValueStore, StoreConfigError, type NatsKeyValueStoreOptions } from "./nats.js";
