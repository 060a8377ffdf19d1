/** How the launcher is set up: where objects go and what every task pod gets. */
export interface ManifestConfig {
  /** Namespace of every object (the original always used `default`). */
  namespace: string;
  /** Secrets used to pull images, by name (the original hard-coded `registry`). */
  imagePullSecrets: readonly string[];
  /** Service account of task pods whose task names none. */
  serviceAccount?: string;
  /** Small image with `mkdir`, used by the init container that creates `TASK_PATH`. */
  initImage: string;
  /** `host:port` of the etcd rendezvous server given to ElasticJobs; required for them. */
  elasticRdzvEndpoint?: string;
  /**
   * What MPIJob workers run while the launcher drives them over ssh (default
   * `/usr/sbin/sshd -De`); an empty list keeps the image's own entrypoint. The task's `command`
   * and `args` run on the launcher.
   */
  mpiWorkerCommand?: readonly string[];
  /** Labels added to every object and pod, below Odin's own and the task's. */
  extraLabels?: Readonly<Record<string, string>>;
  /**
   * Environment given to every task container, below the task's own `env` and Odin's `ODIN_*`
   * ids; for example `ODIN_CRED` where tasks still read the original's credentials file.
   */
  env?: Readonly<Record<string, string>>;
}

/** What MPIJob workers run unless configured: an ssh server in the foreground. */
export const defaultMpiWorkerCommand: readonly string[] = Object.freeze(["/usr/sbin/sshd", "-De"]);

/**
 * Defaults for a single-namespace install: namespace `default` (as the original), no pull
 * secrets, `busybox:1.36` to create `TASK_PATH`, the rendezvous service the original looked up
 * (`etcd-service` in namespace `elastic-job`, port 2379) by its DNS name, and `sshd` on MPI
 * workers (what the mpi-operator's v2 images expect).
 */
export const defaultManifestConfig: Readonly<ManifestConfig> = Object.freeze({
  namespace: "default",
  imagePullSecrets: Object.freeze([]),
  initImage: "busybox:1.36",
  elasticRdzvEndpoint: "etcd-service.elastic-job.svc:2379",
  mpiWorkerCommand: defaultMpiWorkerCommand,
});

/** One attempt of one task, as the launcher is asked to start it (pipeline-spec's one launch type). */
export type { LaunchSpec } from "@odin/pipeline-spec";

/** A launch that cannot be turned into a valid object (bad attempt, missing configuration). */
export class ManifestError extends Error {
  override name = "ManifestError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
