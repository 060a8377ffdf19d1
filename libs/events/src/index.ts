export {
  EventBusUnavailableError,
  subjectMatches,
  subjects,
  type BusMessage,
  type ConsumeOptions,
  type EventBus,
  type EventHandler,
  type PublishAck,
  type PublishOptions,
  type Subscription,
} from "./bus.js";
export { MemoryEventBus } from "./memory.js";
export { NatsEventBus, type NatsEventBusOptions } from "./nats.js";
