// Pushes and syncs sent to a replica that does not lead go to the leader: forwarded with the
// caller's own token (the leader authenticates and authors the commit as that caller), or retried
// here while leadership moves, so a client never sees a failover.
import { Metadata, status, type ServerUnaryCall } from "@grpc/grpc-js";
import { RepoSyncServiceClient } from "@odin/proto";
import {
  createClient,
  forwardableAuthorization,
  isGrpcStatusError,
  UnavailableError,
} from "@odin/service-kit";
import { NotLeaderError, type LeaseHolder } from "./lease.js";
import { NotLeadingError } from "./repository.js";

/** Leadership as forwarding sees it (a `Lease`). */
export interface Leadership {
  isLeader(): boolean;
  /** The leader as last seen; undefined when none is known. */
  leader(): LeaseHolder | undefined;
}

/** Options of `LeaderForwarder`. */
export interface LeaderForwarderOptions {
  leadership: Leadership;
  /** This replica (never forwarded to). */
  self: LeaseHolder;
  /** How long a call waits for a leader to answer before it fails UNAVAILABLE (default 20 s). */
  waitMs?: number;
  /** Deadline of a forwarded call (default 90 s: a push fetches, commits and pushes). */
  callDeadlineMs?: number;
}

/** Marks a forwarded call, so a replica that stopped leading meanwhile does not forward it again. */
const FORWARDED = "odin-forwarded-by";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

/** Runs a leader-only call here when leading, else on the leader; retries while leadership moves. */
export class LeaderForwarder {
  private readonly clients = new Map<string, RepoSyncServiceClient>();

  constructor(private readonly options: LeaderForwarderOptions) {}

  /**
   * `local` when this replica leads, else `remote` on the leader's client with the caller's
   * authorization. A call that finds no leader (it died, an election is under way) or a replica
   * that just stopped leading is tried again until `waitMs` has passed; both calls are idempotent
   * (Push by its request id, Sync by nature).
   */
  async run<T>(
    call: Pick<ServerUnaryCall<unknown, unknown>, "metadata">,
    local: () => Promise<T>,
    remote: (client: RepoSyncServiceClient, metadata: Metadata) => Promise<T>,
  ): Promise<T> {
    const forwarded = call.metadata.get(FORWARDED).length > 0;
    const deadline = Date.now() + (this.options.waitMs ?? 20_000);
    let lastError: unknown;
    for (let attempt = 0; ; attempt++) {
      try {
        if (this.options.leadership.isLeader()) return await local();
        const leader = this.options.leadership.leader();
        if (!forwarded && leader !== undefined && leader.id !== this.options.self.id) {
          const metadata = new Metadata();
          const authorization = forwardableAuthorization(call);
          if (authorization !== undefined) metadata.set("authorization", authorization);
          metadata.set(FORWARDED, this.options.self.id);
          return await remote(this.client(leader.address), metadata);
        }
        lastError = undefined;
      } catch (err) {
        if (!isRetryable(err)) throw err;
        lastError = err;
      }
      if (forwarded || Date.now() >= deadline) {
        throw new UnavailableError(
          `no repo-sync replica leads at the moment${lastError instanceof Error ? ` (${lastError.message})` : ""}; try again in a few seconds`,
          { cause: lastError },
        );
      }
      await sleep(Math.min(1000, 100 * 2 ** Math.min(attempt, 4)));
    }
  }

  /** Closes the clients of leaders this replica forwarded to. */
  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private client(address: string): RepoSyncServiceClient {
    let c = this.clients.get(address);
    if (c === undefined) {
      c = createClient(RepoSyncServiceClient, {
        address,
        retries: 0,
        deadlineMs: this.options.callDeadlineMs ?? 90_000,
      });
      this.clients.set(address, c);
    }
    return c;
  }
}

/** A leader gone (connection refused) or a replica that stopped leading answers UNAVAILABLE. */
function isRetryable(err: unknown): boolean {
  if (isGrpcStatusError(err)) return err.code === status.UNAVAILABLE;
  return err instanceof NotLeadingError || err instanceof NotLeaderError;
}
