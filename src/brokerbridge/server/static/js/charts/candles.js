// Candle chart: OHLC candles (green up, red down) with volume bars underneath, the price axis on
// the right, times along the bottom, and the last close marked. As many recent candles as fit.

import { COLORS, niceTicks } from "./canvas.js";

const PAD = { left: 6, right: 64, top: 10, bottom: 22 };
const SLOT = 9; // px per candle
const VOLUME_SHARE = 0.2;

/** `candles`: [{begin, open, high, low, close, volume}] numbers, oldest first. */
export function drawCandles(ctx, width, height, candles, formatPrice, formatTime) {
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  if (!candles.length || plotW <= 0) return;
  const shown = candles.slice(-Math.max(1, Math.floor(plotW / SLOT)));
  let lo = Infinity;
  let hi = -Infinity;
  let maxVolume = 0;
  for (const c of shown) {
    lo = Math.min(lo, c.low);
    hi = Math.max(hi, c.high);
    maxVolume = Math.max(maxVolume, c.volume);
  }
  if (hi === lo) {
    hi += Math.abs(hi) * 0.001 || 1;
    lo -= Math.abs(lo) * 0.001 || 1;
  }
  const margin = (hi - lo) * 0.06;
  lo -= margin;
  hi += margin;
  const priceH = plotH * (1 - VOLUME_SHARE);
  const y = (p) => PAD.top + priceH - ((p - lo) / (hi - lo)) * priceH;
  const xAt = (i) => PAD.left + plotW - (shown.length - i) * SLOT + SLOT / 2;

  ctx.lineWidth = 1;
  ctx.textBaseline = "middle";
  ctx.textAlign = "left";
  for (const p of niceTicks(lo, hi, 5)) {
    const yy = Math.round(y(p)) + 0.5;
    ctx.strokeStyle = COLORS.grid;
    ctx.beginPath();
    ctx.moveTo(PAD.left, yy);
    ctx.lineTo(PAD.left + plotW, yy);
    ctx.stroke();
    ctx.fillStyle = COLORS.axis;
    ctx.fillText(formatPrice(p), PAD.left + plotW + 6, yy);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const every = Math.max(1, Math.round(90 / SLOT));
  shown.forEach((c, i) => {
    if ((shown.length - 1 - i) % every === 0) ctx.fillText(formatTime(c.begin), xAt(i), PAD.top + plotH + 6);
  });

  const volTop = PAD.top + priceH + 4;
  const volH = plotH - priceH - 4;
  shown.forEach((c, i) => {
    const up = c.close >= c.open;
    const color = up ? COLORS.pos : COLORS.neg;
    const x = Math.round(xAt(i)) + 0.5;
    ctx.strokeStyle = color;
    ctx.beginPath();
    ctx.moveTo(x, y(c.high));
    ctx.lineTo(x, y(c.low));
    ctx.stroke();
    const top = y(Math.max(c.open, c.close));
    const bodyH = Math.max(1, Math.abs(y(c.open) - y(c.close)));
    ctx.fillStyle = color;
    ctx.fillRect(x - (SLOT - 3) / 2, top, SLOT - 3, bodyH);
    if (maxVolume > 0) {
      const h = (c.volume / maxVolume) * volH;
      ctx.fillStyle = up ? COLORS.posFill : COLORS.negFill;
      ctx.fillRect(x - (SLOT - 3) / 2, volTop + volH - h, SLOT - 3, h);
    }
  });

  const last = shown[shown.length - 1];
  const yy = Math.round(y(last.close)) + 0.5;
  ctx.strokeStyle = COLORS.accent;
  ctx.setLineDash([2, 3]);
  ctx.beginPath();
  ctx.moveTo(PAD.left, yy);
  ctx.lineTo(PAD.left + plotW, yy);
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = COLORS.accent;
  ctx.fillRect(PAD.left + plotW + 1, yy - 8, PAD.right - 2, 16);
  ctx.fillStyle = "#04121f";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(formatPrice(last.close), PAD.left + plotW + 5, yy);
}
