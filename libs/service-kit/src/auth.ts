// Bearer-token authentication. Tokens live in a JSON file, either as the token itself or as its
// SHA-256 (`sha256:<hex>`), so the file need not hold usable secrets. Every presented token is
// hashed and compared with every entry in constant time; a token never reaches a log or an error.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";

/** Caller roles, weakest first: viewers read, operators run and push, admins do everything. */
export type Role = "viewer" | "operator" | "admin";

/** All roles, weakest first. */
export const roles: readonly Role[] = ["viewer", "operator", "admin"];

/** Whether `role` is one of the roles. */
export function isRole(role: unknown): role is Role {
  return typeof role === "string" && (roles as readonly string[]).includes(role);
}

/** Whether a caller with role `have` may call an RPC that needs `need`. */
export function roleAtLeast(have: Role, need: Role): boolean {
  return roles.indexOf(have) >= roles.indexOf(need);
}

/** Who is calling: the subject of their token (a user or a service) and its role. */
export interface Caller {
  /** The token's subject, e.g. `alice` or `dag-scheduler`. */
  subject: string;
  /** The token's role. */
  role: Role;
}

/** One entry of the tokens file. */
export interface TokenEntry {
  /** The token itself, or `sha256:<64 hex digits>` of it. */
  token: string;
  /** Who holds it; handlers see it (e.g. as the git author of a push). */
  subject: string;
  /** What it may do. */
  role: Role;
}

interface StoredToken {
  digest: Buffer;
  caller: Caller;
}

const SHA256_PREFIX = "sha256:";

function digestOf(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** `sha256:<hex>` of a token: what to put in the tokens file instead of the token itself. */
export function hashToken(token: string): string {
  return SHA256_PREFIX + digestOf(token).toString("hex");
}

/** A new random token (32 bytes, base64url), for admins creating tokens-file entries. */
export function generateToken(): string {
  return randomBytes(32).toString("base64url");
}

/** Thrown when a tokens file cannot be used; one line per problem, never quoting a token. */
export class TokensFileError extends Error {
  override readonly name = "TokensFileError";
}

/** The set of known tokens; `authenticate` maps a presented token to its caller. */
export class TokenStore {
  private readonly entries: readonly StoredToken[];

  private constructor(entries: readonly StoredToken[]) {
    this.entries = entries;
  }

  /** Builds a store from entries, checking roles, subjects, hash syntax and duplicates. */
  static fromEntries(entries: readonly TokenEntry[], source = "tokens"): TokenStore {
    const problems: string[] = [];
    const stored: StoredToken[] = [];
    const seen = new Map<string, number>();
    entries.forEach((entry, i) => {
      const where = `${source}: tokens[${i}]`;
      const raw: unknown = entry;
      if (typeof raw !== "object" || raw === null) {
        problems.push(`${where}: expected an object with token, subject and role`);
        return;
      }
      const { token, subject, role } = raw as Record<string, unknown>;
      let ok = true;
      if (typeof subject !== "string" || subject.trim() === "") {
        problems.push(`${where}.subject: missing; say who holds the token (e.g. "alice")`);
        ok = false;
      }
      if (!isRole(role)) {
        problems.push(
          `${where}.role: ${JSON.stringify(role ?? null)} is not a role; use viewer, operator or admin`,
        );
        ok = false;
      }
      let digest: Buffer | undefined;
      if (typeof token !== "string" || token === "") {
        problems.push(`${where}.token: missing; give the token or sha256:<hex> of it`);
        ok = false;
      } else if (token.startsWith(SHA256_PREFIX)) {
        const hex = token.slice(SHA256_PREFIX.length);
        if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
          problems.push(`${where}.token: a sha256: entry needs exactly 64 hex digits`);
          ok = false;
        } else {
          digest = Buffer.from(hex, "hex");
        }
      } else if (/\s/.test(token)) {
        problems.push(`${where}.token: contains whitespace; tokens are sent in an HTTP header`);
        ok = false;
      } else {
        digest = digestOf(token);
      }
      if (digest === undefined) return;
      const key = digest.toString("hex");
      const first = seen.get(key);
      if (first !== undefined) {
        problems.push(`${where}.token: same token as tokens[${first}]; give each holder their own`);
        return;
      }
      seen.set(key, i);
      if (!ok) return;
      stored.push({ digest, caller: { subject: (subject as string).trim(), role: role as Role } });
    });
    if (problems.length > 0) throw new TokensFileError(problems.join("\n"));
    return new TokenStore(stored);
  }

  /** Number of tokens. */
  get size(): number {
    return this.entries.length;
  }

  /** The caller a token belongs to, or undefined. Compares with every entry in constant time. */
  authenticate(token: string): Caller | undefined {
    const digest = digestOf(token);
    let found: Caller | undefined;
    // No early exit: the time taken does not depend on which entry (if any) matches.
    for (const entry of this.entries) {
      if (timingSafeEqual(digest, entry.digest) && found === undefined) found = entry.caller;
    }
    return found;
  }
}

/**
 * Parses a tokens file: `{"tokens": [{"token": "…" | "sha256:<hex>", "subject": "alice",
 * "role": "viewer" | "operator" | "admin"}, …]}`. `source` names the file in error messages.
 */
export function parseTokensFile(text: string, source: string): TokenStore {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    // JSON.parse messages quote the offending text, which may be a token: report only the position.
    const position = /position (\d+)/.exec(err instanceof Error ? err.message : "")?.[1];
    throw new TokensFileError(
      `${source}: not valid JSON${position !== undefined ? ` (near character ${position})` : ""}; ` +
        `expected {"tokens": [{"token": …, "subject": …, "role": …}]}`,
    );
  }
  const list = (parsed as { tokens?: unknown } | null)?.tokens;
  if (typeof parsed !== "object" || parsed === null || !Array.isArray(list)) {
    throw new TokensFileError(
      `${source}: expected an object with a "tokens" list: {"tokens": [{"token": …, "subject": …, "role": …}]}`,
    );
  }
  return TokenStore.fromEntries(list as TokenEntry[], source);
}

/** Reads and parses a tokens file (see {@link parseTokensFile}). */
export async function loadTokensFile(path: string): Promise<TokenStore> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new TokensFileError(
      `${path}: cannot read the tokens file (${typeof code === "string" ? code : String(err)}); ` +
        `set ODIN_TOKENS_FILE to a readable file, or ODIN_AUTH=off for a local trial`,
    );
  }
  return parseTokensFile(text, path);
}

/** How to send a token, quoted in every UNAUTHENTICATED message. */
export const TOKEN_HINT = "pass a token with --token or the ODIN_TOKEN environment variable";

/** The outcome of checking one call's `authorization` metadata. */
export type AuthResult =
  | { ok: true; caller: Caller }
  | { ok: false; reason: "unauthenticated"; message: string }
  | { ok: false; reason: "permission-denied"; message: string; caller: Caller };

/**
 * Checks the `authorization` values of a call against the store and the role the RPC needs.
 * Messages say what to do and never contain the presented token.
 */
export function authorize(
  store: TokenStore,
  authorization: readonly unknown[],
  rpc: string,
  need: Role,
): AuthResult {
  const header = authorization[0];
  if (header === undefined) {
    return {
      ok: false,
      reason: "unauthenticated",
      message: `missing bearer token: ${TOKEN_HINT} (sent as "authorization: Bearer <token>")`,
    };
  }
  const match = typeof header === "string" ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
  const token = match?.[1];
  if (authorization.length > 1 || token === undefined) {
    return {
      ok: false,
      reason: "unauthenticated",
      message: `malformed authorization metadata: expected one "Bearer <token>"; ${TOKEN_HINT}`,
    };
  }
  const caller = store.authenticate(token);
  if (caller === undefined) {
    return {
      ok: false,
      reason: "unauthenticated",
      message: `unknown or revoked token: check the token given with --token or ODIN_TOKEN`,
    };
  }
  if (!roleAtLeast(caller.role, need)) {
    return {
      ok: false,
      reason: "permission-denied",
      message: `${rpc} needs role ${need}; ${caller.subject} has role ${caller.role}`,
      caller,
    };
  }
  return { ok: true, caller };
}
