// Apache ECharts, only the parts the dashboard uses (keeps the bundle small).
import * as echarts from "echarts/core";
import { LineChart, ScatterChart, ParallelChart, BarChart } from "echarts/charts";
import {
  GridComponent,
  TooltipComponent,
  ParallelComponent,
  VisualMapComponent,
  LegendComponent,
  DataZoomComponent,
  TitleComponent,
  MarkLineComponent,
  MarkAreaComponent,
} from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";
import type { RunState } from "./wire";

echarts.use([
  LineChart,
  ScatterChart,
  ParallelChart,
  BarChart,
  GridComponent,
  TooltipComponent,
  ParallelComponent,
  VisualMapComponent,
  LegendComponent,
  DataZoomComponent,
  TitleComponent,
  MarkLineComponent,
  MarkAreaComponent,
  CanvasRenderer,
]);

export type Chart = echarts.ECharts;

const live = new Set<Chart>();
let observer: ResizeObserver | null = null;

/** A chart in `el`, resized with it and disposed by `disposeAll` on navigation. */
export function chart(el: HTMLElement): Chart {
  const c = echarts.init(el, undefined, { renderer: "canvas" });
  live.add(c);
  if (!observer) {
    observer = new ResizeObserver((entries) => {
      for (const e of entries) {
        const inst = echarts.getInstanceByDom(e.target as HTMLElement);
        inst?.resize();
      }
    });
  }
  observer.observe(el);
  return c;
}

export function disposeAll(): void {
  for (const c of live) {
    observer?.unobserve(c.getDom());
    c.dispose();
  }
  live.clear();
}

export const palette = ["#2f6fde", "#e5553a", "#23a26d", "#9b59b6", "#f0a020", "#17a2b8", "#d6336c", "#6c757d"];

export const stateColors: Record<RunState, string> = {
  running: "#2f6fde",
  queued: "#8aa4d6",
  finished: "#23a26d",
  failed: "#e5553a",
  crashed: "#b02a37",
  stopped_early: "#f0a020",
  cancelled: "#6c757d",
};

/** The colour of the `k`-th highlighted run: the palette, then hues spread by the golden
 * angle, so no two highlighted runs share a colour however many there are. */
export function curveColour(k: number): string {
  return k < palette.length ? palette[k] : `hsl(${Math.round((k * 137.508) % 360)}, 62%, 42%)`;
}

let measurer: CanvasRenderingContext2D | null = null;

/** `text` cut to fit `maxWidth` pixels in `font` (a CSS font), with "…" when cut: axis names
 * that would run into their neighbours are shortened (the full name goes in a tooltip). */
export function fitText(text: string, maxWidth: number, font = "bold 12px sans-serif"): string {
  measurer ??= document.createElement("canvas").getContext("2d");
  if (!measurer) return text;
  measurer.font = font;
  if (measurer.measureText(text).width <= maxWidth) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (measurer.measureText(text.slice(0, mid) + "…").width <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return text.slice(0, Math.max(1, lo)) + "…";
}

