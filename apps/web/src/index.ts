// @odin/web on the server side: only where the built web UI is, for the gateway and `odin server`
// to serve as static files. The UI itself (src/ui) runs in the browser.
import { fileURLToPath } from "node:url";

/** The directory of the built web UI (index.html and its hashed bundles). */
export const webRoot = fileURLToPath(new URL("../dist/public", import.meta.url));
