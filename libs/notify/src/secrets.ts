// Webhook URLs are secrets: a pipeline names one (`webhook: {secret: slack-ml}`) and the server
// resolves the name here, from the files an operator controls. No URL is ever logged or returned
// in an error.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import yaml from "js-yaml";
import { webhookSecretNamePattern } from "@odin/pipeline-spec";

/** Resolves a webhook secret's name to its URL. */
export interface WebhookSecrets {
  /** The URL stored under `name`, or undefined when there is none. */
  resolve(name: string): Promise<string | undefined>;
  /** Where names are looked up, for messages (never a URL): "the webhooks file /etc/odin/webhooks.yml". */
  readonly where: string;
}

/** A webhook secret that cannot be used: unknown name, unreadable store, not an http(s) URL. */
export class WebhookSecretError extends Error {
  override name = "WebhookSecretError";
}

function checkName(name: string): void {
  // The name becomes a file name below a directory: only the characters a Secret key allows.
  if (!webhookSecretNamePattern.test(name))
    throw new WebhookSecretError(`"${name.slice(0, 80)}" is not a webhook secret name`);
}

/** Checks that a resolved value is an http(s) URL, without ever quoting it. */
function checkUrl(name: string, value: string, where: string): string {
  const url = value.trim();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new WebhookSecretError(
      `webhook secret ${name} in ${where} is not a URL; it must hold the webhook's http(s) URL`,
    );
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:")
    throw new WebhookSecretError(
      `webhook secret ${name} in ${where} is a ${parsed.protocol} URL; only http and https are posted to`,
    );
  return url;
}

/**
 * Names from a directory holding one file per name whose content is the URL — the layout of a
 * Kubernetes Secret mounted as a volume (`odin-webhooks`), so a name added to the Secret is found
 * without a restart. Read on every lookup.
 */
export class DirectoryWebhookSecrets implements WebhookSecrets {
  readonly where: string;
  constructor(private readonly directory: string) {
    this.where = `the webhook secrets directory ${directory}`;
  }

  async resolve(name: string): Promise<string | undefined> {
    checkName(name);
    let text: string;
    try {
      text = await readFile(join(this.directory, name), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new WebhookSecretError(
        `cannot read webhook secret ${name} from ${this.where}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
    return checkUrl(name, text, this.where);
  }
}

/** Names from a YAML or JSON file mapping each name to its URL (`slack-ml: https://hooks…`). Read on every lookup. */
export class FileWebhookSecrets implements WebhookSecrets {
  readonly where: string;
  constructor(private readonly file: string) {
    this.where = `the webhooks file ${file}`;
  }

  async resolve(name: string): Promise<string | undefined> {
    checkName(name);
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      throw new WebhookSecretError(
        `cannot read ${this.where}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
    let map: unknown;
    try {
      map = yaml.load(text);
    } catch {
      // The parser's message quotes the file's text, which holds URLs: say only where.
      throw new WebhookSecretError(`${this.where} is not valid YAML or JSON`);
    }
    if (map === undefined || map === null) return undefined;
    if (typeof map !== "object" || Array.isArray(map))
      throw new WebhookSecretError(`${this.where} must map webhook names to URLs`);
    const value = (map as Record<string, unknown>)[name];
    if (value === undefined || value === null || !Object.hasOwn(map, name)) return undefined;
    if (typeof value !== "string")
      throw new WebhookSecretError(`webhook secret ${name} in ${this.where} must be a URL string`);
    return checkUrl(name, value, this.where);
  }
}

/** The first of several sources that knows a name (e.g. the Secret's directory, then a file). */
export class WebhookSecretChain implements WebhookSecrets {
  readonly where: string;
  constructor(private readonly sources: readonly WebhookSecrets[]) {
    this.where =
      sources.length === 0
        ? "the server's webhook secrets (none are configured: set ODIN_WEBHOOKS_DIR or ODIN_WEBHOOKS_FILE, or odin server --webhooks FILE)"
        : sources.map((s) => s.where).join(" or ");
  }

  async resolve(name: string): Promise<string | undefined> {
    for (const source of this.sources) {
      const url = await source.resolve(name);
      if (url !== undefined) return url;
    }
    return undefined;
  }
}

/** The webhook secrets a server is configured with: a Secret's mounted directory and/or a file, in that order. */
export function configuredWebhookSecrets(config: {
  directory?: string;
  file?: string;
}): WebhookSecrets {
  const sources: WebhookSecrets[] = [];
  if (config.directory) sources.push(new DirectoryWebhookSecrets(config.directory));
  if (config.file) sources.push(new FileWebhookSecrets(config.file));
  return new WebhookSecretChain(sources);
}
