// nats.js (3.x) ends every request that got its answer by calling `cancel()`, which builds a
// RequestError — capturing a stack trace — only to reject a promise that is already resolved. Every
// key-value read and write and every JetStream publish is such a request: building that error was a
// third of the client's CPU per request (≈ 69 → 49 µs per KV put measured here). Loaded once by
// whatever connects to NATS through this package or @odin/run-store.
//
// After this, an answered request is ended as before (its timer stopped, its reply subscription
// released) without the error; a request cancelled before its answer (no responders, a closed
// connection, a failed publish) still rejects exactly as the client made it.
import { RequestOne } from "@nats-io/nats-core/internal";

/** What a request is once its answer came (set before the client ends it). */
const answered = Symbol("answered");

/** The parts of a request this relies on. */
interface Answerable {
  [answered]?: boolean;
  timer?: { cancel(): void };
  mux: { cancel(request: unknown): void };
}

interface Patchable {
  resolver: (this: Answerable, err: Error | null, msg: unknown) => void;
  cancel: (this: Answerable, err?: Error) => void;
}

const proto = RequestOne.prototype as unknown as Patchable;
const { resolver, cancel } = proto;
// Left alone if a later client no longer has the shape this relies on.
if (typeof resolver === "function" && typeof cancel === "function" && !(answered in proto)) {
  Object.defineProperty(proto, answered, { value: false, writable: true });
  proto.resolver = function (err, msg) {
    this[answered] = true;
    resolver.call(this, err, msg);
  };
  proto.cancel = function (err) {
    if (err !== undefined || !this[answered]) return cancel.call(this, err);
    this.timer?.cancel();
    this.mux.cancel(this);
  };
}

/** Whether answered requests end without building an error (for tests). */
export const answeredRequestsPatched = (): boolean => answered in RequestOne.prototype;
