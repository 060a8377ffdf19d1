// The DAG on a canvas: pan (drag, arrow keys), zoom (wheel, + and -), fit (0), click or Enter to
// open a node. Draws only the nodes on screen, once per animation frame, when something changed.
import { useEffect, useLayoutEffect, useRef } from "preact/hooks";
import { TaskState, type TaskRun } from "../gen/odin/common/v1/run_pb.js";
import { duration, ms, taskColors, taskStateName } from "./format.js";
import type { GraphLayout } from "./graph.js";
import type { RunModel } from "./run-model.js";

interface Props {
  layout: GraphLayout;
  /** The run to paint (repainted on its changes); without it every task is drawn plain (a pipeline). */
  model?: RunModel;
  /** The TaskRun of the task at a layout index. */
  taskRunOf?: (task: number) => TaskRun | undefined;
  /** Index of the selected node, or -1. */
  selected: number;
  onSelect: (node: number) => void;
  /** What a screen reader hears for the picture (the task list carries the details). */
  label: string;
}

interface View {
  x: number;
  y: number;
  k: number;
}

const STATE_ORDER = [
  TaskState.SUCCEEDED,
  TaskState.RUNNING,
  TaskState.LAUNCHING,
  TaskState.RETRYING,
  TaskState.FAILED,
  TaskState.ERROR,
  TaskState.CANCELLED,
  TaskState.SKIPPED,
  TaskState.PENDING,
];

/** The canvas view of a laid-out DAG. */
export function DagView({ layout, model, taskRunOf, selected, onSelect, label }: Props) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const view = useRef<View>({ x: 0, y: 0, k: 1 });
  const dirty = useRef(true);
  // Until the user pans or zooms, the graph is kept fitted to the canvas as the page reflows.
  const fitted = useRef(true);
  const props = useRef({ layout, model, taskRunOf, selected, onSelect });
  props.current = { layout, model, taskRunOf, selected, onSelect };

  // Fit the whole graph when a new layout arrives. Layout effects run as soon as the canvas is in
  // the page, so the first paint is asked for in the frame that shows it, not one later.
  useLayoutEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    fit(view.current, layout, canvas.clientWidth, canvas.clientHeight);
    fitted.current = true;
    dirty.current = true;
  }, [layout]);

  useEffect(() => {
    dirty.current = true;
  }, [selected, taskRunOf]);

  useLayoutEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    let frame = 0;
    const draw = (): void => {
      frame = requestAnimationFrame(draw);
      const p = props.current;
      // A run's graph is painted once every task's state is known, not once per snapshot part.
      if (!dirty.current || (p.model && !p.model.statesKnown)) return;
      dirty.current = false;
      paint(
        canvas,
        view.current,
        p.layout,
        p.model ? p.taskRunOf : undefined,
        p.model?.states,
        p.selected,
      );
      canvas.dataset["rendered"] = String(p.model?.version ?? 0);
      if (p.model?.statesKnown && canvas.dataset["complete"] === undefined) {
        // The first paint of the whole graph with every task's state: what "opens in" measures.
        canvas.dataset["complete"] = String(Math.round(performance.now()));
        performance.mark("odin:first-full-render");
      }
    };
    frame = requestAnimationFrame(draw);
    const unsubscribe = model?.subscribe(() => (dirty.current = true));
    // Running tasks' durations tick.
    const tick = setInterval(() => (dirty.current = true), 1000);
    const resize = new ResizeObserver(() => {
      if (fitted.current)
        fit(view.current, props.current.layout, canvas.clientWidth, canvas.clientHeight);
      dirty.current = true;
    });
    resize.observe(canvas);
    return () => {
      cancelAnimationFrame(frame);
      unsubscribe?.();
      clearInterval(tick);
      resize.disconnect();
    };
  }, [model]);

  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    let drag: { x: number; y: number; moved: boolean } | undefined;
    const onDown = (e: PointerEvent): void => {
      drag = { x: e.clientX, y: e.clientY, moved: false };
      canvas.setPointerCapture(e.pointerId);
    };
    const onMove = (e: PointerEvent): void => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (!drag.moved) return;
      view.current.x += dx;
      view.current.y += dy;
      fitted.current = false;
      drag.x = e.clientX;
      drag.y = e.clientY;
      dirty.current = true;
    };
    const onUp = (e: PointerEvent): void => {
      const wasDrag = drag?.moved ?? false;
      drag = undefined;
      if (wasDrag) return;
      const rect = canvas.getBoundingClientRect();
      const v = view.current;
      const gx = (e.clientX - rect.left - v.x) / v.k;
      const gy = (e.clientY - rect.top - v.y) / v.k;
      const hit = props.current.layout.nodes.findIndex(
        (n) => gx >= n.x && gx <= n.x + n.width && gy >= n.y && gy <= n.y + n.height,
      );
      if (hit >= 0) props.current.onSelect(hit);
    };
    const onWheel = (e: WheelEvent): void => {
      e.preventDefault();
      const rect = canvas.getBoundingClientRect();
      zoomAt(view.current, Math.exp(-e.deltaY / 400), e.clientX - rect.left, e.clientY - rect.top);
      fitted.current = false;
      dirty.current = true;
    };
    const onKey = (e: KeyboardEvent): void => {
      const v = view.current;
      const step = 60;
      const handled = (() => {
        switch (e.key) {
          case "ArrowLeft":
            v.x += step;
            return true;
          case "ArrowRight":
            v.x -= step;
            return true;
          case "ArrowUp":
            v.y += step;
            return true;
          case "ArrowDown":
            v.y -= step;
            return true;
          case "+":
          case "=":
            zoomAt(v, 1.25, canvas.clientWidth / 2, canvas.clientHeight / 2);
            return true;
          case "-":
            zoomAt(v, 0.8, canvas.clientWidth / 2, canvas.clientHeight / 2);
            return true;
          case "0":
            fit(v, props.current.layout, canvas.clientWidth, canvas.clientHeight);
            return true;
          case "Tab": {
            // Tab moves between nodes inside the graph; Escape leaves it.
            const n = props.current.layout.nodes.length;
            if (n === 0) return false;
            const cur = props.current.selected;
            const next = e.shiftKey ? (cur <= 0 ? n - 1 : cur - 1) : (cur + 1) % n;
            props.current.onSelect(next);
            centerOn(v, props.current.layout, next, canvas.clientWidth, canvas.clientHeight);
            return true;
          }
          case "Escape":
            canvas.blur();
            return true;
          default:
            return false;
        }
      })();
      if (handled) {
        e.preventDefault();
        fitted.current = e.key === "0";
        dirty.current = true;
      }
    };
    canvas.addEventListener("pointerdown", onDown);
    canvas.addEventListener("pointermove", onMove);
    canvas.addEventListener("pointerup", onUp);
    canvas.addEventListener("wheel", onWheel, { passive: false });
    canvas.addEventListener("keydown", onKey);
    return () => {
      canvas.removeEventListener("pointerdown", onDown);
      canvas.removeEventListener("pointermove", onMove);
      canvas.removeEventListener("pointerup", onUp);
      canvas.removeEventListener("wheel", onWheel);
      canvas.removeEventListener("keydown", onKey);
    };
  }, []);

  return (
    <div class="dag">
      <canvas
        ref={canvasRef}
        class="dag-canvas"
        tabIndex={0}
        role="img"
        aria-label={`${label}. Arrow keys pan, + and - zoom, 0 fits, Tab selects the next node, Escape leaves.`}
        data-testid="dag"
      />
      <p class="dag-help" aria-hidden="true">
        drag to pan · wheel or +/− to zoom · 0 to fit · click a node
      </p>
    </div>
  );
}

function fit(v: View, layout: GraphLayout, width: number, height: number): void {
  if (layout.width === 0 || width === 0) return;
  v.k = Math.min(1.5, Math.max(0.05, Math.min(width / layout.width, height / layout.height)));
  v.x = (width - layout.width * v.k) / 2;
  v.y = (height - layout.height * v.k) / 2;
}

function zoomAt(v: View, factor: number, cx: number, cy: number): void {
  const k = Math.min(4, Math.max(0.02, v.k * factor));
  v.x = cx - ((cx - v.x) * k) / v.k;
  v.y = cy - ((cy - v.y) * k) / v.k;
  v.k = k;
}

function centerOn(v: View, layout: GraphLayout, node: number, width: number, height: number): void {
  const n = layout.nodes[node];
  if (!n) return;
  v.k = Math.max(v.k, 0.6);
  v.x = width / 2 - (n.x + n.width / 2) * v.k;
  v.y = height / 2 - (n.y + n.height / 2) * v.k;
}

function paint(
  canvas: HTMLCanvasElement,
  v: View,
  layout: GraphLayout,
  taskRunOf: ((task: number) => TaskRun | undefined) | undefined,
  /** Every task's state by task index (kept current by the run's model), when known. */
  states: readonly TaskState[] | undefined,
  selected: number,
): void {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.setTransform(dpr * v.k, 0, 0, dpr * v.k, dpr * v.x, dpr * v.y);
  // The visible part of the graph, in graph coordinates.
  const x0 = -v.x / v.k;
  const y0 = -v.y / v.k;
  const x1 = x0 + w / v.k;
  const y1 = y0 + h / v.k;

  ctx.strokeStyle = "#6b7280";
  ctx.lineWidth = 1.2;
  ctx.beginPath();
  for (const e of layout.edges) {
    const [first, ...rest] = e.points;
    if (!first) continue;
    ctx.moveTo(first.x, first.y);
    for (const p of rest) ctx.lineTo(p.x, p.y);
  }
  ctx.stroke();

  const now = Date.now();
  const showText = v.k > 0.35;
  ctx.textBaseline = "middle";
  layout.nodes.forEach((n, i) => {
    if (n.x > x1 || n.x + n.width < x0 || n.y > y1 || n.y + n.height < y0) return;
    if (n.members.length === 1) {
      const task = taskRunOf?.(n.members[0]!);
      const state = states?.[n.members[0]!] ?? task?.state ?? TaskState.PENDING;
      const color = taskColors[state];
      ctx.fillStyle = color.fill;
      roundRect(ctx, n.x, n.y, n.width, n.height);
      ctx.fill();
      if (showText) {
        ctx.fillStyle = color.text;
        ctx.font = "600 13px system-ui, sans-serif";
        ctx.fillText(clip(ctx, n.label, n.width - 16), n.x + 8, n.y + 15);
        ctx.font = "12px system-ui, sans-serif";
        const parts = [taskRunOf ? taskStateName(state) : ""];
        if (task && task.attempt > 1) parts.push(`attempt ${task.attempt}`);
        const start = ms(task?.startTime) ?? ms(task?.launchTime);
        if (task && start !== undefined) parts.push(duration((ms(task.endTime) ?? now) - start));
        ctx.fillText(clip(ctx, parts.filter(Boolean).join(" · "), n.width - 16), n.x + 8, n.y + 33);
      }
    } else {
      // A group: a bar of its members' states, widths by count.
      const counts = new Map<TaskState, number>();
      for (const m of n.members) {
        const s = states?.[m] ?? taskRunOf?.(m)?.state ?? TaskState.PENDING;
        counts.set(s, (counts.get(s) ?? 0) + 1);
      }
      ctx.fillStyle = "#ffffff";
      roundRect(ctx, n.x, n.y, n.width, n.height);
      ctx.fill();
      let x = n.x;
      for (const s of STATE_ORDER) {
        const c = counts.get(s) ?? 0;
        if (c === 0) continue;
        const bw = (n.width * c) / n.members.length;
        ctx.fillStyle = taskColors[s].fill;
        ctx.fillRect(x, n.y + n.height - 12, bw, 12);
        x += bw;
      }
      ctx.strokeStyle = "#374151";
      roundRect(ctx, n.x, n.y, n.width, n.height);
      ctx.stroke();
      if (showText) {
        ctx.fillStyle = "#111827";
        ctx.font = "600 13px system-ui, sans-serif";
        ctx.fillText(clip(ctx, n.label, n.width - 16), n.x + 8, n.y + 13);
        ctx.font = "12px system-ui, sans-serif";
        const done = counts.get(TaskState.SUCCEEDED) ?? 0;
        const failed = (counts.get(TaskState.FAILED) ?? 0) + (counts.get(TaskState.ERROR) ?? 0);
        const running = counts.get(TaskState.RUNNING) ?? 0;
        const text = taskRunOf
          ? `${done.toLocaleString()} ✓ ${running.toLocaleString()} running${failed ? ` ${failed.toLocaleString()} ✗` : ""}`
          : "group of tasks";
        ctx.fillText(clip(ctx, text, n.width - 16), n.x + 8, n.y + 27);
      }
    }
    if (i === selected) {
      ctx.strokeStyle = "#f59e0b";
      ctx.lineWidth = 3;
      roundRect(ctx, n.x - 3, n.y - 3, n.width + 6, n.height + 6);
      ctx.stroke();
      ctx.lineWidth = 1.2;
    }
  });
}

function roundRect(ctx: CanvasRenderingContext2D, x: number, y: number, w: number, h: number) {
  ctx.beginPath();
  ctx.roundRect(x, y, w, h, 6);
}

function clip(ctx: CanvasRenderingContext2D, text: string, width: number): string {
  if (ctx.measureText(text).width <= width) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ctx.measureText(text.slice(0, mid) + "…").width <= width) lo = mid;
    else hi = mid - 1;
  }
  return text.slice(0, lo) + "…";
}
