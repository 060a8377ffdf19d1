// One open watch: turns store changes into newline-delimited JSON watch events, applying the
// namespace and selectors (an object leaving the selection is DELETED for this watch, one
// entering it is ADDED, as on a real API server).
import type { ServerResponse } from "node:http";
import { type ResourceDef, apiVersionOf } from "./resources.js";
import type { Matcher } from "./selectors.js";
import type { Change, ChangeSink, ChangeType } from "./store.js";
import type { KubeObject, StatusJson } from "./types.js";

/** Above this many buffered bytes a watch is a slow consumer and is closed, as the API server does. */
const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

/** A watch event line. */
function line(type: ChangeType | "BOOKMARK" | "ERROR", object: KubeObject | StatusJson): string {
  return `${JSON.stringify({ type, object })}\n`;
}

/** An open watch connection. */
export class WatchStream implements ChangeSink {
  private closed = false;
  private corked = false;

  constructor(
    private readonly res: ServerResponse,
    readonly def: ResourceDef,
    private readonly namespace: string | undefined,
    private readonly match: Matcher | undefined,
    readonly allowBookmarks: boolean,
    private readonly onClose: (stream: WatchStream) => void,
  ) {
    res.on("close", () => this.finish());
  }

  /** True once the connection is gone. */
  get isClosed(): boolean {
    return this.closed;
  }

  onChange(change: Change): void {
    if (this.closed) return;
    const object = change.object;
    if (this.namespace !== undefined && object.metadata.namespace !== this.namespace) return;
    if (this.match === undefined) {
      change.line ??= line(change.type, object);
      this.write(change.line);
      return;
    }
    const now = this.match(object);
    if (change.type === "MODIFIED") {
      const before = change.previous !== undefined && this.match(change.previous);
      if (now && before) {
        change.line ??= line(change.type, object);
        this.write(change.line);
      } else if (now) this.write(line("ADDED", object));
      else if (before) this.write(line("DELETED", object));
      return;
    }
    if (now) {
      change.line ??= line(change.type, object);
      this.write(change.line);
    }
  }

  /** Sends an ADDED event for an existing object (initial state of a watch without a version). */
  sendInitial(object: KubeObject): void {
    if (this.namespace !== undefined && object.metadata.namespace !== this.namespace) return;
    if (this.match !== undefined && !this.match(object)) return;
    this.write(line("ADDED", object));
  }

  /** Sends a BOOKMARK carrying `resourceVersion`. */
  bookmark(resourceVersion: number, initialEventsEnd = false): void {
    const metadata: KubeObject["metadata"] = { resourceVersion: String(resourceVersion) };
    if (initialEventsEnd) metadata.annotations = { "k8s.io/initial-events-end": "true" };
    this.write(
      line("BOOKMARK", { kind: this.def.kind, apiVersion: apiVersionOf(this.def), metadata }),
    );
  }

  /** Sends an ERROR event with a Status (e.g. 410 Expired) and closes. */
  error(status: StatusJson): void {
    this.write(line("ERROR", status));
    this.close(true);
  }

  /** Ends the watch: cleanly (`graceful`) or by cutting the connection. */
  close(graceful: boolean): void {
    if (this.closed) return;
    if (graceful) this.res.end();
    else this.res.destroy();
    this.finish();
  }

  private write(text: string): void {
    if (this.closed) return;
    if (!this.corked) {
      // Batch every event of this tick into one chunk: thousands of pods changing in the same
      // timer tick cost one socket write per watch, not one per event.
      this.corked = true;
      this.res.cork();
      process.nextTick(() => {
        this.corked = false;
        this.res.uncork();
      });
    }
    this.res.write(text);
    if (this.res.writableLength > MAX_BUFFERED_BYTES) this.close(false);
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
  }
}
