// Fakes for the kit's own tests (not exported from the package): small handlers for real generated
// services, whose behaviour is picked by the request, and a logger that captures its lines.
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import {
  credentials,
  makeClientConstructor,
  type ServiceDefinition,
  status,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { service as healthDefinition } from "grpc-health-check";
import {
  common,
  type dagscheduler,
  DagSchedulerServiceService,
  type DagSchedulerServiceServer,
  K8sLauncherServiceService,
  type pipelineregistry,
  PipelineRegistryServiceService,
  RepoSyncServiceService,
} from "@odin/proto";
import { TokenStore, hashToken } from "./auth.js";
import { InvalidArgumentError, NotFoundError } from "./errors.js";
import { createLogger, type Logger, type LogLevel } from "./logger.js";
import {
  callerOf,
  contextOf,
  forwardableAuthorization,
  service,
  type ServiceRegistration,
  serverStreamHandler,
  unaryHandler,
} from "./server.js";

/** Tokens of the test callers; the operator's is stored in the store only as its SHA-256. */
export const TOKENS = {
  viewer: "viewer-token-6f1c2b9a4e",
  operator: "operator-token-93d0aa51c7",
  admin: "admin-token-0b7e44c2d8",
} as const;

/** A store with vera (viewer), otto (operator, stored as sha256:…) and ada (admin). */
export function testTokenStore(): TokenStore {
  return TokenStore.fromEntries([
    { token: TOKENS.viewer, subject: "vera", role: "viewer" },
    { token: hashToken(TOKENS.operator), subject: "otto", role: "operator" },
    { token: TOKENS.admin, subject: "ada", role: "admin" },
  ]);
}

/** A logger that keeps its lines. */
export function captureLogger(level: LogLevel = "debug"): {
  logger: Logger;
  lines: string[];
  records: () => Record<string, unknown>[];
} {
  const lines: string[] = [];
  const logger = createLogger({ service: "test", level, write: (line) => lines.push(line) });
  return {
    logger,
    lines,
    records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** Calls the fake slow handlers are in (resolved when each starts), for shutdown tests. */
export const slowCallStarted = { waiters: [] as (() => void)[] };

function onSlowStart(): void {
  for (const waiter of slowCallStarted.waiters.splice(0)) waiter();
}

/** Resolves when the next slow fake call has started. */
export function nextSlowCall(): Promise<void> {
  return new Promise((resolve) => slowCallStarted.waiters.push(resolve));
}

/** Thrown as @odin/run-store throws it: the kit maps it by name, without depending on the store. */
class RevisionMismatchError extends Error {
  override readonly name = "RevisionMismatchError";
}

// `conflict:<key>` calls seen so far, per key.
const conflictCalls = new Map<string, number>();

/** How many times the fake has been called with `conflict:<key>`. */
export function conflictCallsOf(key: string): number {
  return conflictCalls.get(key) ?? 0;
}

/**
 * PipelineRegistryService fake. ListPipelines (viewer) acts on `pathPrefix`: "" answers with the
 * caller as `commit` (`subject/role`); `slow:<ms>` waits first; `notfound`, `invalid`, `boom`,
 * `reject` throw; `conflict:<key>` loses a compare-and-set on its first call per key, then
 * answers. ValidatePipeline needs operator, and is quiet (its successful calls are logged at
 * debug); GetPipeline is left out of the roles (admin).
 */
export function registryFake(): ServiceRegistration {
  return service(
    PipelineRegistryServiceService,
    {
      listPipelines: unaryHandler(
        async (request, call): Promise<pipelineregistry.ListPipelinesResponse> => {
          const caller = callerOf(call);
          const prefix = request.pathPrefix;
          if (prefix.startsWith("slow:")) {
            contextOf(call).logger.info("slow call started");
            onSlowStart();
            await sleep(Number(prefix.slice(5)), undefined, { ref: false });
          }
          if (prefix.startsWith("conflict:")) {
            const calls = conflictCallsOf(prefix) + 1;
            conflictCalls.set(prefix, calls);
            if (calls === 1) throw new RevisionMismatchError(`${prefix} changed since revision 3`);
          }
          if (prefix === "credentials") {
            // What a handler can see of the caller's token: never in its metadata; whole, for
            // forwarding, through forwardableAuthorization.
            const inMetadata = call.metadata.get("authorization").length;
            return {
              commit: `metadata:${inMetadata} forwardable:${forwardableAuthorization(call) ?? "none"}`,
              pipelines: [],
            };
          }
          if (prefix === "notfound") {
            throw new NotFoundError("pipeline nope not found at commit abc123");
          }
          if (prefix === "invalid") {
            throw new InvalidArgumentError("pipeline sst2 is invalid: 2 problems", {
              problems: [
                {
                  file: "sst2/main.yml",
                  line: 3,
                  column: 5,
                  task: "train",
                  field: "image",
                  message: "image is required",
                },
                {
                  file: "sst2/main.yml",
                  line: 9,
                  column: 1,
                  message: "unknown key 'tasks2'",
                  severity: "warning",
                },
              ],
            });
          }
          if (prefix === "boom") throw new Error("database password hunter2 leaked in a stack");
          if (prefix === "reject")
            return Promise.reject(new TypeError("cannot read x of undefined"));
          return {
            commit: `${caller.subject}/${caller.role}`,
            pipelines: [
              {
                path: "sst2",
                name: "sst2",
                taskCount: 3,
                valid: true,
                problems: [],
                schedules: [],
                triggers: [],
              },
            ],
          };
        },
      ),
      getPipeline: (_call, callback) => {
        callback(null, { commit: "abc123", pipeline: undefined, problems: [] });
      },
      validatePipeline: (_call, callback) => {
        callback(null, { valid: true, pipeline: undefined, problems: [] });
      },
      getPipelineGraph: (_call, callback) => {
        callback(null, {
          commit: "abc123",
          tasks: [],
          dependsCounts: [],
          depends: [],
          problems: [],
        });
      },
    },
    { listPipelines: "viewer", validatePipeline: "operator" },
    ["validatePipeline"],
  );
}

/**
 * DagSchedulerService fake; only WatchRun (viewer) works. `runId` picks: `count:<n>` sends n
 * events; `whoami` sends one whose task is the caller; `fail` sends one then fails with
 * NOT_FOUND; `forever` sends every 20 ms until cancelled.
 */
export function schedulerFake(onCancelled?: () => void): ServiceRegistration {
  const unimplemented = unimplementedHandlers(DagSchedulerServiceService);
  return service(
    DagSchedulerServiceService,
    {
      ...(unimplemented as DagSchedulerServiceServer),
      watchRun: serverStreamHandler(
        async function* (request, call, signal): AsyncGenerator<dagscheduler.WatchRunResponse> {
          const event = (i: number, task = `task-${i}`): dagscheduler.WatchRunResponse => ({
            event: { $case: "taskRun", value: common.TaskRun.fromPartial({ task }) },
          });
          if (request.runId.startsWith("count:")) {
            const n = Number(request.runId.slice(6));
            for (let i = 0; i < n; i++) yield event(i);
            return;
          }
          if (request.runId === "whoami") {
            const caller = callerOf(call);
            yield event(0, `${caller.subject}/${caller.role}`);
            return;
          }
          if (request.runId === "fail") {
            yield event(0);
            throw new NotFoundError("run fail-123 not found");
          }
          if (request.runId === "forever") {
            try {
              for (let i = 0; !signal.aborted; i++) {
                yield event(i);
                await sleep(20, undefined, { signal }).catch(() => undefined);
              }
            } finally {
              onCancelled?.();
            }
            return;
          }
          throw new NotFoundError(`run ${request.runId} not found`);
        },
      ),
    },
    { watchRun: "viewer" },
  );
}

/** Handlers answering UNIMPLEMENTED for every RPC of a definition. */
export function unimplementedHandlers(definition: ServiceDefinition): UntypedServiceImplementation {
  return Object.fromEntries(
    Object.keys(definition).map((key) => [
      key,
      (
        call: { emit(event: "error", err: unknown): boolean },
        callback?: (err: unknown) => void,
      ) => {
        const err = { code: status.UNIMPLEMENTED, details: `${key} is not in this fake` };
        if (callback) callback(err);
        else call.emit("error", err);
      },
    ]),
  );
}

/** The remaining two Odin services, every RPC unimplemented (so reflection has all four). */
export function stubServices(): ServiceRegistration[] {
  return [RepoSyncServiceService, K8sLauncherServiceService].map((definition) => ({
    definition,
    implementation: unimplementedHandlers(definition),
    roles: {},
  }));
}

/** A port nothing listens on right now (bound once by the OS, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A client of the standard health service. */
export const HealthClient = makeClientConstructor(healthDefinition, "grpc.health.v1.Health");

/** A health Check over plaintext without any token. */
export function healthCheck(address: string, serviceName: string): Promise<string> {
  const client = new HealthClient(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (value: { service: string }) => Buffer.from(encodeHealthRequest(value.service)),
      (buffer: Buffer) => decodeHealthStatus(buffer),
      { service: serviceName },
      (err, response?: string) => {
        client.close();
        if (err) reject(err);
        else resolve(response ?? "");
      },
    );
  });
}

// HealthCheckRequest { string service = 1; } and HealthCheckResponse { ServingStatus status = 1; }
// are tiny; encoding them by hand keeps the check independent of the library under test.
/** Encodes a HealthCheckRequest by hand. */
export function encodeHealthRequest(serviceName: string): Uint8Array {
  const bytes = Buffer.from(serviceName, "utf8");
  return bytes.length === 0
    ? new Uint8Array()
    : Buffer.concat([Buffer.from([0x0a, bytes.length]), bytes]);
}
/** The health statuses by their wire number. */
const SERVING_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];
/** Decodes a HealthCheckResponse's status by hand. */
export function decodeHealthStatus(buffer: Buffer): string {
  const value = buffer.length >= 2 && buffer[0] === 0x08 ? (buffer[1] ?? 0) : 0;
  return SERVING_STATUS[value] ?? String(value);
}

/** The reflection client the tests ask servers with (shared with the e2e stack). */
export { reflect, reflectedServices } from "@odin/testing";
