// How Kubernetes RBAC sees an API request, and what a Role's rules grant, in one comparable form.
import type { RequestRecord } from "@odin/testing";
import type { PolicyRule } from "./model.js";

/** A permission as RBAC sees a request: `verb group/resource[/subresource]` ("" is the core group). */
export function permissionOf(
  rec: Pick<RequestRecord, "method" | "path" | "watch">,
): { permission: string; namespace?: string } | undefined {
  const core = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/.exec(
    rec.path,
  );
  const named =
    /^\/apis\/([^/]+)\/[^/]+\/(?:namespaces\/([^/]+)\/)?([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/.exec(
      rec.path,
    );
  let group: string, namespace: string | undefined, resource: string;
  let name: string | undefined, sub: string | undefined;
  if (core) {
    [, namespace, resource = "", name, sub] = core;
    group = "";
  } else if (named) {
    [, group = "", namespace, resource = "", name, sub] = named;
  } else {
    return undefined; // a non-resource URL (discovery, /version)
  }
  const verb = (() => {
    switch (rec.method) {
      case "GET":
        return name !== undefined ? "get" : rec.watch ? "watch" : "list";
      case "POST":
        return "create";
      case "PUT":
        return "update";
      case "PATCH":
        return "patch";
      case "DELETE":
        return name !== undefined ? "delete" : "deletecollection";
      default:
        return rec.method.toLowerCase();
    }
  })();
  const permission = `${verb} ${group}/${sub ? `${resource}/${sub}` : resource}`;
  return namespace === undefined ? { permission } : { permission, namespace };
}

/** Every (verb, group, resource) a Role's rules grant, in the same form. */
export function grantedBy(rules: readonly PolicyRule[]): string[] {
  const out = new Set<string>();
  for (const rule of rules) {
    for (const group of rule.apiGroups ?? [])
      for (const resource of rule.resources ?? [])
        for (const verb of rule.verbs) out.add(`${verb} ${group}/${resource}`);
  }
  return [...out].sort();
}
