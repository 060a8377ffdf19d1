// Every RPC of every service, as `odin server` serves them, under bad input: each string field of
// each request in turn set to a path that climbs out (`../..`), an absolute path, a NUL byte, a
// 4 KiB and a 1 MiB name, text no id allows, and a blank; then each request made larger than any
// message the server takes (16 MiB). Each call must end with an answer or a clear error — never
// INTERNAL, UNKNOWN, a stack trace or a hang — and nothing may be written outside the server's
// data directory.
// The RPCs are read from the generated contracts, so a new one is covered the day it is added.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, Metadata, type Client, type ServiceError } from "@grpc/grpc-js";
import { dagscheduler, k8slauncher, pipelineregistry, reposync } from "@odin/proto";
import { startOdinServer, tempDir, type OdinServer } from "@odin/test-stack";
import { startNats, type NatsServer } from "@odin/testing";

const canary = `odin-canary-${process.pid}-${Date.now().toString(36)}`;
const badValues = [
  `../../../../../../${canary}`,
  `/${canary}`,
  `a\u0000${canary}`,
  "x".repeat(4096),
  // Far over what an error message may quote back, under the largest message.
  "z".repeat(1 << 20),
  "Not An Id! ünïcode/;$(rm -rf)",
  " ",
];

// gRPC status codes that mean the server failed rather than refused the input.
const failures = new Map([
  [2, "UNKNOWN"],
  [4, "DEADLINE_EXCEEDED"],
  [13, "INTERNAL"],
]);
const RESOURCE_EXHAUSTED = 8;

interface Method {
  path: string;
  responseStream: boolean;
  requestSerialize(value: unknown): Buffer;
  responseDeserialize(value: Buffer): unknown;
}
interface MessageType {
  fromPartial(value: object): Record<string, unknown>;
}

/** Every service definition and client constructor of the four contracts, with request types. */
function contracts(): {
  service: string;
  Client: new (address: string, credentials: unknown) => Client;
  methods: { name: string; method: Method; request: MessageType | undefined }[];
}[] {
  const out = [];
  for (const ns of [dagscheduler, k8slauncher, pipelineregistry, reposync] as unknown as Record<
    string,
    unknown
  >[]) {
    for (const [key, value] of Object.entries(ns)) {
      if (!key.endsWith("ServiceService")) continue;
      const service = key.slice(0, -"Service".length);
      const Client = ns[`${service}Client`] as new (a: string, c: unknown) => Client;
      const methods = Object.values(value as Record<string, Method>).map((method) => {
        const name = method.path.split("/").pop()!;
        return { name, method, request: ns[`${name}Request`] as MessageType | undefined };
      });
      out.push({ service, Client, methods });
    }
  }
  return out;
}

interface Outcome {
  code: number;
  details: string;
}

/** One call: its status (0 for an answer; a stream that stays open is an answer too). */
function call(client: Client, method: Method, request: unknown): Promise<Outcome> {
  const deadline = Date.now() + 60_000;
  return new Promise((resolve) => {
    if (!method.responseStream) {
      client.makeUnaryRequest(
        method.path,
        (v: unknown) => method.requestSerialize(v),
        (b: Buffer) => method.responseDeserialize(b),
        request,
        new Metadata(),
        { deadline },
        (err: ServiceError | null) =>
          resolve(err ? { code: err.code, details: err.details } : { code: 0, details: "" }),
      );
      return;
    }
    const stream = client.makeServerStreamRequest(
      method.path,
      (v: unknown) => method.requestSerialize(v),
      (b: Buffer) => method.responseDeserialize(b),
      request,
      new Metadata(),
      { deadline },
    );
    let done = false;
    const end = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(open);
      stream.cancel();
      resolve(o);
    };
    // A watch that answers or waits without failing is an answer.
    const open = setTimeout(() => end({ code: 0, details: "" }), 2000);
    stream.on("data", () => end({ code: 0, details: "" }));
    stream.on("end", () => end({ code: 0, details: "" }));
    stream.on("error", (err: ServiceError) => end({ code: err.code, details: err.details }));
  });
}

/** Every entry under `dir` whose name holds the canary. */
async function canaries(dir: string): Promise<string[]> {
  const found: string[] = [];
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  for (const e of entries) if (e.includes(canary)) found.push(join(dir, e));
  return found;
}

let nats: NatsServer;
let dir: { path: string; cleanup(): Promise<void> };
let server: OdinServer;

before(async () => {
  dir = await tempDir("odin-e2e-bad-input-");
  nats = await startNats({ runtime: "binary" });
  server = await startOdinServer(["--data", join(dir.path, "data"), "--nats", nats.url], {
    HOME: dir.path,
  });
});

after(async () => {
  await server?.stop();
  await nats?.stop();
  await dir?.cleanup();
});

test("every RPC answers bad strings and oversized requests with a clear error; nothing is written outside", async () => {
  const broken: string[] = [];
  let calls = 0;
  let rpcs = 0;
  const insecure = credentials.createInsecure();
  for (const { service, Client, methods } of contracts()) {
    const client = new Client(server.address, insecure);
    try {
      for (const { name, method, request } of methods) {
        assert.ok(request, `${service}/${name}: no ${name}Request message in the contract`);
        rpcs++;
        const empty = request.fromPartial({});
        const fields = Object.keys(empty).filter((k) => typeof empty[k] === "string");
        const tries: [string, Record<string, unknown>][] = fields.flatMap((field) =>
          badValues.map((value): [string, Record<string, unknown>] => [
            `${field}=${JSON.stringify(value.slice(0, 40))}`,
            request.fromPartial({ [field]: value }),
          ]),
        );
        const outcomes = await Promise.all(tries.map(([, req]) => call(client, method, req)));
        for (const [i, [what]] of tries.entries()) {
          const o = outcomes[i]!;
          calls++;
          const failure = failures.get(o.code);
          if (failure || /\n\s+at /.test(o.details))
            broken.push(`${service}/${name} ${what}: ${failure ?? o.code} ${o.details}`);
          if (o.details.includes("\u0000"))
            broken.push(`${service}/${name} ${what}: a NUL byte echoed in "${o.details}"`);
        }
        // Larger than any message the server takes: refused before it is read.
        const field = fields[0];
        if (field !== undefined) {
          const o = await call(
            client,
            method,
            request.fromPartial({ [field]: "y".repeat(17 << 20) }),
          );
          calls++;
          if (process.env["ODIN_BAD_INPUT_TRACE"])
            console.log(`# ${service}/${name}: ${tries.length} tries, then 17 MiB: ${o.code}`);
          if (o.code !== RESOURCE_EXHAUSTED)
            broken.push(`${service}/${name} with a 17 MiB ${field}: ${o.code} ${o.details}`);
        }
      }
    } finally {
      client.close();
    }
  }
  console.log(`# ${calls} calls over ${rpcs} RPCs`);
  assert.ok(rpcs >= 30, `only ${rpcs} RPCs found in the contracts`);
  assert.deepEqual(broken, [], "calls that failed instead of refusing");
  // Nothing landed where a climbing or absolute name would put it: anywhere under the server's
  // directory, beside it, or at the top of the filesystem (where six "../" from any of its
  // directories lead).
  const landed = await canaries(dir.path);
  for (const place of [tmpdir(), "/"]) {
    const names = await readdir(place).catch(() => [] as string[]);
    landed.push(...names.filter((n) => n.includes(canary)).map((n) => join(place, n)));
  }
  assert.deepEqual(landed, []);
});
