import { keyValueStoreContract } from "./contract.js";
import { MemoryKeyValueStore } from "./memory.js";

keyValueStoreContract("in-memory", () => Promise.resolve(new MemoryKeyValueStore()));
