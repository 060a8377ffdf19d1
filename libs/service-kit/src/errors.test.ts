// The error model: Kubernetes errors to domain errors, domain errors to statuses, statuses to one
// human line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Metadata, status } from "@grpc/grpc-js";
import {
  AlreadyExistsError,
  ConflictError,
  DeadlineExceededError,
  describeGrpcError,
  encodeProblems,
  fromKubernetesError,
  InvalidArgumentError,
  isRetryable,
  MAX_STATUS_DETAILS,
  NotFoundError,
  PermissionDeniedError,
  problemsOf,
  PROBLEMS_METADATA_KEY,
  toGrpcStatus,
  UnauthenticatedError,
  UnavailableError,
} from "./errors.js";

/** What @kubernetes/client-node 1.x throws: an ApiException with an HTTP code and a Status body. */
function apiException(code: number, reason: string, message: string, bodyAsText = true) {
  const body = { kind: "Status", apiVersion: "v1", status: "Failure", message, reason, code };
  return Object.assign(new Error(`HTTP-Code: ${code}\nMessage: Unknown API Status Code!`), {
    code,
    body: bodyAsText ? JSON.stringify(body) : body,
    headers: {},
  });
}

test("Kubernetes API errors map to domain errors by HTTP code, keeping the API's message", () => {
  const cases: [number, string, new (...args: never[]) => Error][] = [
    [404, "NotFound", NotFoundError],
    [409, "AlreadyExists", AlreadyExistsError],
    [409, "Conflict", ConflictError],
    [422, "Invalid", InvalidArgumentError],
    [400, "BadRequest", InvalidArgumentError],
    [403, "Forbidden", PermissionDeniedError],
    [401, "Unauthorized", UnauthenticatedError],
    [429, "TooManyRequests", UnavailableError],
    [503, "ServiceUnavailable", UnavailableError],
    [500, "InternalError", UnavailableError],
    [504, "Timeout", DeadlineExceededError],
  ];
  for (const [code, reason, expected] of cases) {
    const source = apiException(code, reason, `pods "odin-x" ${reason}`, code % 2 === 0);
    const mapped = fromKubernetesError(source, "create pod odin-x");
    assert.ok(mapped instanceof expected, `${code} ${reason} → ${mapped.name}`);
    assert.equal(
      mapped.message,
      `create pod odin-x: pods "odin-x" ${reason} (Kubernetes API ${code})`,
    );
    assert.equal(mapped.cause, source);
  }
});

test("network failures and timeouts of the Kubernetes client map to UNAVAILABLE and DEADLINE_EXCEEDED", () => {
  const refused = Object.assign(new Error("request to https://10.0.0.1/api failed"), {
    cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
  });
  assert.ok(fromKubernetesError(refused) instanceof UnavailableError);
  const timedOut = Object.assign(new Error("network timeout"), { type: "request-timeout" });
  assert.ok(fromKubernetesError(timedOut, "list pods") instanceof DeadlineExceededError);
  assert.ok(
    fromKubernetesError(Object.assign(new Error("x"), { code: "ETIMEDOUT" })) instanceof
      DeadlineExceededError,
  );
  const other = new RangeError("not a Kubernetes error");
  assert.equal(fromKubernetesError(other), other);
});

test("toGrpcStatus maps domain errors (also by name, for libs without the kit) and hides the rest", () => {
  assert.equal(toGrpcStatus(new NotFoundError("run r1 not found"), "id1").code, status.NOT_FOUND);
  class LibNotFound extends Error {
    override readonly name = "NotFoundError";
  }
  const byName = toGrpcStatus(new LibNotFound("pipeline x not found"), "id1");
  assert.equal(byName.code, status.NOT_FOUND);
  assert.equal(byName.details, "pipeline x not found");
  assert.equal(toGrpcStatus(new ConflictError("revision moved"), "id1").code, status.ABORTED);

  const unexpected = toGrpcStatus(new TypeError("x is undefined"), "req-7");
  assert.equal(unexpected.code, status.INTERNAL);
  assert.equal(unexpected.details, "internal error (see server log, request id req-7)");
  assert.ok(unexpected.unexpected);

  // A downstream call's UNAUTHENTICATED is this server's misconfiguration, not the caller's.
  const downstream = Object.assign(new Error("16 UNAUTHENTICATED: unknown token"), {
    code: status.UNAUTHENTICATED,
    details: "unknown token",
    metadata: new Metadata(),
  });
  assert.equal(toGrpcStatus(downstream, "r").code, status.INTERNAL);
  const downstreamNotFound = Object.assign(new Error("5 NOT_FOUND: commit abc"), {
    code: status.NOT_FOUND,
    details: "commit abc not found",
    metadata: new Metadata(),
  });
  assert.deepEqual(
    [toGrpcStatus(downstreamNotFound, "r").code, toGrpcStatus(downstreamNotFound, "r").details],
    [status.NOT_FOUND, "commit abc not found"],
  );
});

test("store and bus errors (by name) map to UNAVAILABLE and ABORTED, which are retryable", () => {
  const named = (name: string) => Object.assign(new Error(`${name} happened`), { name });
  const expected: [string, status, boolean][] = [
    ["StoreUnavailableError", status.UNAVAILABLE, true],
    ["EventBusUnavailableError", status.UNAVAILABLE, true],
    ["RevisionMismatchError", status.ABORTED, true],
    ["KeyExistsError", status.ABORTED, true],
    ["ValueTooLargeError", status.RESOURCE_EXHAUSTED, false],
    ["UnavailableError", status.UNAVAILABLE, true],
    ["DeadlineExceededError", status.DEADLINE_EXCEEDED, true],
    ["ConflictError", status.ABORTED, true],
    ["NotFoundError", status.NOT_FOUND, false],
    ["InvalidArgumentError", status.INVALID_ARGUMENT, false],
    ["ResourceExhaustedError", status.RESOURCE_EXHAUSTED, false],
  ];
  for (const [name, code, retryable] of expected) {
    const mapped = toGrpcStatus(named(name), "r");
    assert.equal(mapped.code, code, name);
    assert.equal(mapped.details, `${name} happened`);
    assert.equal(isRetryable(named(name)), retryable, name);
  }
  assert.equal(isRetryable(new TypeError("x is undefined")), false);
  assert.equal(isRetryable("UNAVAILABLE"), false);
});

test("isRetryable decides by the status code of a failed call", () => {
  const call = (code: status) =>
    Object.assign(new Error(`${code} ${status[code]}`), {
      code,
      details: "",
      metadata: new Metadata(),
    });
  const retryable = Object.values(status)
    .filter((c): c is status => typeof c === "number" && isRetryable(call(c)))
    .map((c) => status[c]);
  assert.deepEqual(retryable.sort(), ["ABORTED", "DEADLINE_EXCEEDED", "UNAVAILABLE"]);
  // A Kubernetes API that is down or overloaded is worth retrying; one that refused is not.
  assert.equal(
    isRetryable(fromKubernetesError(Object.assign(new Error("x"), { code: 503 }))),
    true,
  );
  assert.equal(
    isRetryable(fromKubernetesError(Object.assign(new Error("x"), { code: 422 }))),
    false,
  );
});

test("problems beyond the metadata budget are summarized, and decode back", () => {
  const many = Array.from({ length: 500 }, (_, i) => ({
    file: "big/main.yml",
    line: i + 1,
    column: 3,
    message: `task t${i}: image is required`,
  }));
  const encoded = encodeProblems(many);
  assert.ok(encoded.length <= 4096, `${encoded.length} bytes`);
  const metadata = new Metadata();
  metadata.set(PROBLEMS_METADATA_KEY, encoded);
  const decoded = problemsOf({ metadata });
  assert.deepEqual(decoded[0], many[0]);
  assert.match(decoded.at(-1)?.message ?? "", /^… and \d+ more problems$/);
  const mapped = toGrpcStatus(new InvalidArgumentError("bad", { problems: many }), "r");
  assert.deepEqual(problemsOf(mapped), decoded);
});

function grpcError(code: status, details: string) {
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), {
    code,
    details,
    metadata: new Metadata(),
  });
}

test("describeGrpcError gives one line a user can act on", () => {
  const address = { address: "odin.example:50051" };
  assert.equal(
    describeGrpcError(
      grpcError(
        status.UNAVAILABLE,
        "No connection established. Last error: Error: connect ECONNREFUSED 10.0.0.5:50051",
      ),
      address,
    ),
    "cannot reach odin at odin.example:50051: connection refused — is the server running? set --server / ODIN_SERVER",
  );
  assert.match(
    describeGrpcError(
      grpcError(status.UNAVAILABLE, "Name resolution failed for target dns:nope:1"),
      address,
    ),
    /^cannot reach odin at odin\.example:50051: unknown host/,
  );
  assert.equal(
    describeGrpcError(grpcError(status.UNAVAILABLE, "git remote unreachable: timeout"), address),
    "odin at odin.example:50051 is unavailable: git remote unreachable: timeout",
  );
  assert.equal(
    describeGrpcError(
      grpcError(status.DEADLINE_EXCEEDED, "Deadline exceeded after 30.001s"),
      address,
    ),
    "odin at odin.example:50051 did not answer in time (deadline exceeded)",
  );
  assert.match(
    describeGrpcError(
      grpcError(
        status.UNAUTHENTICATED,
        "missing bearer token: pass a token with --token or the ODIN_TOKEN environment variable",
      ),
    ),
    /^not authenticated: missing bearer token/,
  );
  assert.equal(
    describeGrpcError(
      grpcError(status.PERMISSION_DENIED, "Push needs role operator; vera has role viewer"),
    ),
    "permission denied: Push needs role operator; vera has role viewer",
  );
  assert.equal(
    describeGrpcError(grpcError(status.NOT_FOUND, "run r1 not found")),
    "run r1 not found",
  );
  assert.equal(describeGrpcError(new Error("plain failure")), "plain failure");
});

test("a status message is cut to MAX_STATUS_DETAILS: one quoting a huge input still reaches the client", () => {
  const huge = new NotFoundError(`no run ${"x".repeat(1 << 20)}`);
  const mapped = toGrpcStatus(huge, "r1");
  assert.equal(mapped.code, status.NOT_FOUND);
  assert.ok(mapped.details.length <= MAX_STATUS_DETAILS, String(mapped.details.length));
  assert.match(mapped.details, /^no run x+… \(1048583 characters; cut\)$/);
});

test("control characters a message quotes are sent as escapes, never raw", () => {
  const mapped = toGrpcStatus(
    new NotFoundError('no pipeline "a\u0000b\u001b[2J" here\nsee odin ls'),
    "r1",
  );
  assert.equal(mapped.details, 'no pipeline "a\\u0000b\\u001b[2J" here\nsee odin ls');
});
