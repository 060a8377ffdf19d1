// @odin/launcher/testing: helpers for tests of TaskBackend adapters and of code that launches
// tasks. A separate entry point so that production processes never load node:test or kube-sim.
export {
  backendContract,
  taskWithDefaults,
  type BackendContractFixture,
  type ContractTaskBehaviour,
} from "./contract.js";
