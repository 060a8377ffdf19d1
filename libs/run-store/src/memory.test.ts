import { keyValueStoreContract } from "./testing/contract.js";
import { MemoryKeyValueStore } from "./memory.js";

keyValueStoreContract("in-memory", () => Promise.resolve(new MemoryKeyValueStore()));
