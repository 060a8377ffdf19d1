export {
  EventBusUnavailableError,
  fnv1a,
  partitionOf,
  runPartitions,
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
export { answeredRequestsPatched } from "./answered-requests.js";
export {
  EventBusConfigError,
  natsServers,
  NatsEventBus,
  placementProblem,
  replicaProblem,
  type NatsEventBusOptions,
} from "./nats.js";
export {
  isConsumerNotFound,
  isStreamNotFound,
  mayMeanMissingStream,
  StreamKeeper,
  withoutCredentials,
  type NatsLog,
  type StreamKeeperOptions,
} from "./keeper.js";
export {
  Membership,
  membershipSubject,
  ownerOf,
  type MembershipOptions,
  type WorkShare,
} from "./membership.js";
