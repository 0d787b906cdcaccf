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
