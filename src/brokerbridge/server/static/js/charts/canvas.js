// A <canvas> sized to its box at the device's pixel ratio. The size is kept from a ResizeObserver,
// so drawing never reads layout in the middle of a frame's DOM writes.

export const COLORS = {
  grid: "rgba(139, 151, 166, 0.15)",
  axis: "#8b97a6",
  text: "#c9d1db",
  pos: "#3ecf8e",
  neg: "#ff6b6b",
  posFill: "rgba(62, 207, 142, 0.22)",
  negFill: "rgba(255, 107, 107, 0.22)",
  accent: "#4aa3ff",
};
export const FONT = "11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";

export class ChartCanvas {
  /** `draw(ctx, width, height)` paints in CSS pixels; `request()` asks for a repaint next frame. */
  constructor(canvas, height, frames, key, draw) {
    this.canvas = canvas;
    this.height = height;
    this.frames = frames;
    this.key = key;
    this.draw = draw;
    this.width = 0;
    canvas.style.height = `${height}px`;
    this.observer = new ResizeObserver((entries) => {
      const width = Math.floor(entries[0].contentRect.width);
      if (width !== this.width) {
        this.width = width;
        this.request();
      }
    });
    this.observer.observe(canvas);
  }

  request() {
    this.frames.schedule(this.key, () => this.paint());
  }

  paint() {
    if (this.width <= 0) return;
    const ratio = globalThis.devicePixelRatio || 1;
    const w = Math.round(this.width * ratio);
    const h = Math.round(this.height * ratio);
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    ctx.font = FONT;
    this.draw(ctx, this.width, this.height);
  }

  dispose() {
    this.observer.disconnect();
  }
}

/** About `count` round tick values covering [lo, hi] (1-2-5 steps). */
export function niceTicks(lo, hi, count) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(v);
  return ticks;
}
