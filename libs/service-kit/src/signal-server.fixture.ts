// A service process for the signal test: serves the registry fake, prints its address on stdout,
// and stops on SIGTERM through runUntilSignal, as an app's main.ts would.
import { registryFake, testTokenStore } from "./fixtures.js";
import { createLogger } from "./logger.js";
import { runUntilSignal, startServer } from "./server.js";

const logger = createLogger({ service: "signal-fixture" });
const server = await startServer({
  name: "signal-fixture",
  host: "127.0.0.1",
  port: 0,
  services: [registryFake()],
  auth: testTokenStore(),
  logger,
  shutdownGraceMs: 5000,
});
process.stdout.write(JSON.stringify({ address: server.address }) + "\n");
await runUntilSignal(server, logger, {
  cleanup: async () => {
    logger.info("cleanup ran");
    await Promise.resolve();
  },
});
