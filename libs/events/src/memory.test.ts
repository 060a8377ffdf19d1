import { eventBusContract } from "./contract.js";
import { MemoryEventBus } from "./memory.js";

eventBusContract("in-memory", () => Promise.resolve(new MemoryEventBus()));
