// A gRPC reflection client (grpc.reflection.v1), as grpcurl uses, for tests that ask a server what
// it serves.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import {
  credentials,
  loadPackageDefinition,
  type GrpcObject,
  type ServiceClientConstructor,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";

/** Sends one reflection request (e.g. `{ listServices: "*" }`) and returns the first response. */
export async function reflect(
  address: string,
  request: Record<string, string>,
): Promise<Record<string, unknown>> {
  const require = createRequire(import.meta.url);
  const root = dirname(dirname(require.resolve("@grpc/reflection")));
  const definition = loadSync(join(root, "proto/grpc/reflection/v1/reflection.proto"), {
    includeDirs: [join(root, "proto")],
  });
  const grpcPackage = loadPackageDefinition(definition) as unknown as {
    grpc: { reflection: { v1: GrpcObject } };
  };
  const Reflection = grpcPackage.grpc.reflection.v1["ServerReflection"] as ServiceClientConstructor;
  const client = new Reflection(address, credentials.createInsecure());
  try {
    return await new Promise((resolve, reject) => {
      const call = (
        client as unknown as Record<string, () => NodeJS.ReadWriteStream & { end(): void }>
      )["ServerReflectionInfo"]!.call(client);
      call.on("data", (response: Record<string, unknown>) => {
        resolve(response);
        call.end();
      });
      call.on("error", reject);
      call.write(request as never);
    });
  } finally {
    client.close();
  }
}

/** The service names a server lists through reflection, sorted, as `grpcurl list` shows them. */
export async function reflectedServices(address: string): Promise<string[]> {
  const listed = (await reflect(address, { listServices: "*" })) as {
    listServicesResponse?: { service: { name: string }[] };
  };
  return (listed.listServicesResponse?.service ?? []).map((s) => s.name).sort();
}
