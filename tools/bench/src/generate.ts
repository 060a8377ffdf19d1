/**
 * Generates a large, realistic pipeline: groups of 100 tasks, each a root that fans out into ten
 * chains of nine tasks that fan back in to one task, groups chained one after another.
 */
export function generatePipelineYaml(taskCount: number): string {
  const parts: string[] = ["name: bench\nshared-image: &img registry.example/mead:1.4.0\ntasks:\n"];
  let previousFanIn: string | undefined;
  let made = 0;
  for (let g = 0; made < taskCount; g++) {
    const root = `g${g}-root`;
    parts.push(task(root, previousFanIn ? [previousFanIn] : [], made));
    made++;
    const ends: string[] = [];
    for (let c = 0; c < 10 && made < taskCount; c++) {
      let prev = root;
      for (let k = 0; k < 9 && made < taskCount; k++) {
        const name = `g${g}-c${c}-s${k}`;
        parts.push(task(name, [prev], made));
        made++;
        prev = name;
      }
      ends.push(prev);
    }
    if (made < taskCount) {
      previousFanIn = `g${g}-join`;
      parts.push(task(previousFanIn, ends, made));
      made++;
    }
  }
  return parts.join("");
}

function task(name: string, depends: string[], i: number): string {
  const mount =
    i % 3 === 0 ? "  mounts:\n  - name: data\n    path: /data\n    claim: data-rw-many\n" : "";
  const deps = depends.length > 0 ? `  depends: [${depends.join(", ")}]\n` : "";
  return (
    `- name: ${name}\n  image: *img\n  command: mead-train\n` +
    `  args: ["--basedir", "\${RUN_PATH}/\${TASK_ID}", "--config", "\${WORK_PATH}/conf.yml", "--seed", ${i}]\n` +
    deps +
    mount
  );
}
