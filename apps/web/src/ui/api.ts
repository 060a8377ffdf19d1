// The browser's way to Odin: typed clients of the same gRPC services the CLI calls, over the
// Connect protocol (binary protobuf over HTTP, server streams as streamed responses) to the
// gateway or `odin server`, which forwards each call to the services unchanged.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { DagSchedulerService } from "../gen/odin/dagscheduler/v1/dagscheduler_pb.js";
import { K8sLauncherService } from "../gen/odin/k8slauncher/v1/k8slauncher_pb.js";
import { PipelineRegistryService } from "../gen/odin/pipelineregistry/v1/pipelineregistry_pb.js";

const TOKEN_KEY = "odin.token";

/** The bearer token this browser signed in with, if any. */
export function storedToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

/** Remembers (or, with null, forgets) the bearer token sent with every call. */
export function storeToken(token: string | null): void {
  if (token === null) localStorage.removeItem(TOKEN_KEY);
  else localStorage.setItem(TOKEN_KEY, token);
}

const bearer: Interceptor = (next) => (request) => {
  const token = storedToken();
  if (token !== null) request.header.set("authorization", `Bearer ${token}`);
  return next(request);
};

function transport(interceptors: Interceptor[]) {
  return createConnectTransport({
    baseUrl: location.origin,
    useBinaryFormat: true,
    interceptors,
  });
}

const signedIn = transport([bearer]);

/** dag-scheduler: runs. */
export const scheduler = createClient(DagSchedulerService, signedIn);
/** pipeline-registry: pipelines. */
export const registry = createClient(PipelineRegistryService, signedIn);
/** k8s-launcher: logs and Kubernetes events. */
export const launcher = createClient(K8sLauncherService, signedIn);

/** What this browser may do, as the server decides it. */
export interface Session {
  /** The server accepts calls without a token (embedded mode's default). */
  authOff: boolean;
  /** A token is needed and none (or a rejected one) is stored. */
  needsToken: boolean;
  /** The caller may start, cancel, retry and remove runs (role operator or admin). */
  canOperate: boolean;
}

/**
 * Asks the server who we are. Authentication: a read without a token succeeds only with auth off.
 * Role: a SubmitRun naming no pipeline is refused with PERMISSION_DENIED for a viewer, and with
 * INVALID_ARGUMENT (starting nothing) for a caller who may run — the server's own role check
 * answers, so the UI never keeps a copy of the role table. Both questions are asked at once.
 */
export async function probeSession(): Promise<Session> {
  const anonymous = createClient(DagSchedulerService, transport([]));
  const [read, submit] = await Promise.allSettled([
    anonymous.listRuns({ pageSize: 1 }),
    scheduler.submitRun({ pipeline: "", requestId: "" }),
  ]);
  let authOff = true;
  if (read.status === "rejected") {
    if (ConnectError.from(read.reason).code !== Code.Unauthenticated) throw read.reason;
    authOff = false;
  }
  if (!authOff && storedToken() === null) return { authOff, needsToken: true, canOperate: false };
  if (submit.status === "fulfilled") return { authOff, needsToken: false, canOperate: true };
  const code = ConnectError.from(submit.reason).code;
  if (code === Code.Unauthenticated) return { authOff, needsToken: true, canOperate: false };
  return { authOff, needsToken: false, canOperate: code !== Code.PermissionDenied };
}

/** What a page may assume while the server has not answered who we are: it may read. */
export const provisionalSession: Session = { authOff: false, needsToken: false, canOperate: false };

/** An error as a user should read it: the server's message, without the transport's prefix. */
export function errorText(err: unknown): string {
  if (err instanceof ConnectError) return `${Code[err.code] ?? err.code}: ${err.rawMessage}`;
  return err instanceof Error ? err.message : String(err);
}

/** A fresh id for requests that must not be applied twice (SubmitRun, RetryRun). */
export function requestId(): string {
  // crypto.randomUUID exists only on https or localhost; a gateway may be served over plain http.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
