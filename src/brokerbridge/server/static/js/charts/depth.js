// Depth chart: cumulative size on each side of the book as steps, bids left (green), asks right
// (red), price on the x axis around the mid, cumulative size on the y axis.

import { COLORS, niceTicks } from "./canvas.js";

const PAD = { left: 8, right: 56, top: 10, bottom: 22 };

/** `bids`/`asks`: [[price, qty] numbers] best first. `format(price)` labels the price axis. */
export function drawDepth(ctx, width, height, bids, asks, format, formatQty) {
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  if (!bids.length || !asks.length || plotW <= 0 || plotH <= 0) return;
  const cumulative = (levels) => {
    let total = 0;
    return levels.map(([price, qty]) => [price, (total += qty)]);
  };
  const bidSteps = cumulative(bids);
  const askSteps = cumulative(asks);
  const mid = (bids[0][0] + asks[0][0]) / 2;
  // Symmetric around the mid, wide enough for the deeper side.
  const half = Math.max(mid - bids[bids.length - 1][0], asks[asks.length - 1][0] - mid) || mid * 0.001;
  const lo = mid - half;
  const hi = mid + half;
  const maxQty = Math.max(bidSteps[bidSteps.length - 1][1], askSteps[askSteps.length - 1][1]);
  const x = (price) => PAD.left + ((price - lo) / (hi - lo)) * plotW;
  const y = (qty) => PAD.top + plotH - (qty / maxQty) * plotH;

  ctx.strokeStyle = COLORS.grid;
  ctx.fillStyle = COLORS.axis;
  ctx.lineWidth = 1;
  ctx.textBaseline = "middle";
  ctx.textAlign = "left";
  for (const q of niceTicks(0, maxQty, 4)) {
    ctx.beginPath();
    ctx.moveTo(PAD.left, Math.round(y(q)) + 0.5);
    ctx.lineTo(PAD.left + plotW, Math.round(y(q)) + 0.5);
    ctx.stroke();
    ctx.fillText(formatQty(q), PAD.left + plotW + 6, y(q));
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const price of [lo + half * 0.2, mid, hi - half * 0.2]) {
    ctx.fillText(format(price), x(price), PAD.top + plotH + 6);
  }

  const side = (steps, line, fill, direction) => {
    ctx.beginPath();
    ctx.moveTo(x(steps[0][0]), y(0));
    let prevQty = 0;
    for (const [price, qty] of steps) {
      ctx.lineTo(x(price), y(prevQty));
      ctx.lineTo(x(price), y(qty));
      prevQty = qty;
    }
    ctx.lineTo(direction < 0 ? PAD.left : PAD.left + plotW, y(prevQty));
    ctx.lineTo(direction < 0 ? PAD.left : PAD.left + plotW, y(0));
    ctx.closePath();
    ctx.fillStyle = fill;
    ctx.fill();
    ctx.strokeStyle = line;
    ctx.lineWidth = 1.5;
    ctx.stroke();
  };
  side(bidSteps, COLORS.pos, COLORS.posFill, -1);
  side(askSteps, COLORS.neg, COLORS.negFill, 1);

  ctx.strokeStyle = COLORS.axis;
  ctx.setLineDash([3, 3]);
  ctx.beginPath();
  ctx.moveTo(Math.round(x(mid)) + 0.5, PAD.top);
  ctx.lineTo(Math.round(x(mid)) + 0.5, PAD.top + plotH);
  ctx.stroke();
  ctx.setLineDash([]);
}
