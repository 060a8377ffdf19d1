// The launcher's configuration: documented, parsed, and mapped onto the backend's options.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { checkConfigDocs, ConfigError, readConfig, silentLogger } from "@odin/service-kit";
import { k8sLauncherConfigSchema } from "./config.js";
import { backendOptions, commaList, parseResourceTypes } from "./options.js";

test("every variable is documented in docs/configuration.md with its default", () => {
  const docs = readFileSync(new URL("../../../docs/configuration.md", import.meta.url), "utf8");
  assert.deepEqual(checkConfigDocs(docs, [k8sLauncherConfigSchema], { allowUndeclared: true }), []);
});

test("configuration becomes the backend's options", () => {
  const config = readConfig(
    {
      ODIN_NATS_URL: "nats://127.0.0.1:4222",
      ODIN_K8S_NAMESPACE: "ml",
      ODIN_IMAGE_PULL_SECRETS: " regcred, , gcr ",
      ODIN_RESOURCE_TYPES: "Pod,Job",
      ODIN_PENDING_TIMEOUT_SECONDS: "60",
      ODIN_K8S_QPS: "200",
      ODIN_DATA_PATH: "/mnt/odin",
    },
    k8sLauncherConfigSchema,
  );
  const kc = new KubeConfig();
  const options = backendOptions(config, kc, silentLogger);
  assert.equal(options.kubeConfig, kc);
  assert.deepEqual(options.manifest, {
    namespace: "ml",
    imagePullSecrets: ["regcred", "gcr"],
    initImage: "busybox:1.36",
    elasticRdzvEndpoint: "etcd-service.elastic-job.svc:2379",
  });
  assert.equal(options.dataRoot, "/mnt/odin");
  assert.equal(options.logDir, undefined, "the backend's default: under the data root");
  assert.equal(options.defaultPendingTimeoutMs, 60_000);
  assert.equal(options.qps, 200);
  assert.equal(options.burst, 100);
  assert.deepEqual(options.retry, { retries: 5 });
  assert.deepEqual(options.resourceTypes, ["Pod", "Job"]);
});

test("ODIN_NATS_URL is required and resource types are checked", () => {
  assert.throws(() => readConfig({}, k8sLauncherConfigSchema), /ODIN_NATS_URL/);
  assert.deepEqual(commaList(undefined), []);
  assert.throws(() => parseResourceTypes("Pod,Deployment"), ConfigError);
  assert.throws(() => parseResourceTypes(" , "), ConfigError);
});
