import { eventBusContract } from "./testing/contract.js";
import { MemoryEventBus } from "./memory.js";

eventBusContract("in-memory", () => Promise.resolve(new MemoryEventBus()));
