// The volatility smile of one expiry: implied volatility (y, %) by strike (x), calls and puts in
// their own colours — a bar from the bid's IV to the ask's at each strike and a line through the
// mids — with the underlying's price as a dashed vertical line. Only finite IVs are drawn: an empty
// figure (no bid, a price below intrinsic value…) leaves a gap, never a point at 0.

import { COLORS, niceTicks } from "./canvas.js";

const PAD = { left: 8, right: 52, top: 22, bottom: 22 };
export const SMILE_COLORS = { call: COLORS.accent, put: "#f0b429", spot: COLORS.axis };
const OFFSET = { call: -3, put: 3 }; // px: a call's and a put's bar at one strike side by side
const finite = (v) => typeof v === "number" && Number.isFinite(v);

/**
 * The points of a smile from OptionAnalytics events (or the API's options): per side, one
 * {strike, bid, ask, mid} per option with at least one finite IV, by strike; `count` is the number
 * of IV figures that will be drawn (bid + ask + mid, calls and puts).
 */
export function smileOf(options) {
  const sides = { call: [], put: [] };
  let count = 0;
  for (const o of options) {
    if (!o || !(o.option_type in sides)) continue;
    const point = {
      strike: Number(o.strike),
      bid: finite(o.iv_bid) ? o.iv_bid : null,
      ask: finite(o.iv_ask) ? o.iv_ask : null,
      mid: finite(o.iv_mid) ? o.iv_mid : null,
    };
    const n = (point.bid !== null) + (point.ask !== null) + (point.mid !== null);
    if (n === 0 || !Number.isFinite(point.strike)) continue;
    count += n;
    sides[o.option_type].push(point);
  }
  for (const points of Object.values(sides)) points.sort((a, b) => a.strike - b.strike);
  return { calls: sides.call, puts: sides.put, count };
}

/**
 * Paint `smile` (from `smileOf`) in CSS pixels. `spot` is a number or null; `formatStrike(x)` and
 * `formatIv(fraction)` label the axes; `labels` {calls, puts, spot, legend, empty} are its words.
 */
export function drawSmile(ctx, width, height, smile, spot, formatStrike, formatIv, labels) {
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  if (plotW <= 0 || plotH <= 0) return;
  const all = [...smile.calls, ...smile.puts];
  if (!all.length) {
    ctx.fillStyle = COLORS.axis;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(labels.empty, width / 2, height / 2);
    return;
  }
  const strikes = all.map((p) => p.strike);
  const ivs = all.flatMap((p) => [p.bid, p.ask, p.mid].filter((v) => v !== null));
  let xLo = Math.min(...strikes);
  let xHi = Math.max(...strikes);
  const xPad = (xHi - xLo) * 0.06 || xLo * 0.05 || 1;
  xLo -= xPad;
  xHi += xPad;
  let yLo = Math.min(...ivs);
  let yHi = Math.max(...ivs);
  const yPad = (yHi - yLo) * 0.12 || yLo * 0.1 || 0.01;
  yLo = Math.max(0, yLo - yPad);
  yHi += yPad;
  const x = (strike) => PAD.left + ((strike - xLo) / (xHi - xLo)) * plotW;
  const y = (iv) => PAD.top + plotH - ((iv - yLo) / (yHi - yLo)) * plotH;

  ctx.lineWidth = 1;
  ctx.strokeStyle = COLORS.grid;
  ctx.fillStyle = COLORS.axis;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  for (const iv of niceTicks(yLo, yHi, 4)) {
    const yy = Math.round(y(iv)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(PAD.left, yy);
    ctx.lineTo(PAD.left + plotW, yy);
    ctx.stroke();
    ctx.fillText(formatIv(iv), PAD.left + plotW + 6, yy);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const strike of niceTicks(xLo, xHi, Math.max(2, Math.floor(plotW / 90)))) {
    ctx.fillText(formatStrike(strike), x(strike), PAD.top + plotH + 6);
  }

  if (spot !== null && Number.isFinite(spot) && spot >= xLo && spot <= xHi) {
    const xs = Math.round(x(spot)) + 0.5;
    ctx.strokeStyle = SMILE_COLORS.spot;
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(xs, PAD.top);
    ctx.lineTo(xs, PAD.top + plotH);
    ctx.stroke();
    ctx.setLineDash([]);
    // Labelled at the foot of the line, clear of the legend on top.
    ctx.fillStyle = COLORS.text;
    ctx.textBaseline = "bottom";
    ctx.textAlign = xs > PAD.left + plotW * 0.75 ? "right" : "left";
    ctx.fillText(`${labels.spot} ${formatStrike(spot)}`, xs + (ctx.textAlign === "left" ? 4 : -4), PAD.top + plotH - 2);
  }

  const side = (points, color, offset) => {
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 1.5;
    for (const p of points) {
      if (p.bid === null || p.ask === null) continue;
      const xx = Math.round(x(p.strike)) + offset + 0.5;
      ctx.beginPath();
      ctx.moveTo(xx, y(p.bid));
      ctx.lineTo(xx, y(p.ask));
      ctx.moveTo(xx - 3, y(p.bid));
      ctx.lineTo(xx + 3, y(p.bid));
      ctx.moveTo(xx - 3, y(p.ask));
      ctx.lineTo(xx + 3, y(p.ask));
      ctx.stroke();
    }
    // A lone bid or ask (the other side empty): a tick mark, so it is not mistaken for a mid.
    for (const p of points) {
      const lone = p.bid === null ? p.ask : p.ask === null ? p.bid : null;
      if (lone === null) continue;
      const xx = Math.round(x(p.strike)) + offset + 0.5;
      ctx.beginPath();
      ctx.moveTo(xx - 4, y(lone));
      ctx.lineTo(xx + 4, y(lone));
      ctx.stroke();
    }
    const mids = points.filter((p) => p.mid !== null);
    ctx.lineWidth = 2;
    ctx.beginPath();
    mids.forEach((p, i) => (i ? ctx.lineTo(x(p.strike), y(p.mid)) : ctx.moveTo(x(p.strike), y(p.mid))));
    ctx.stroke();
    for (const p of mids) {
      ctx.beginPath();
      ctx.arc(x(p.strike), y(p.mid), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  };
  side(smile.calls, SMILE_COLORS.call, OFFSET.call);
  side(smile.puts, SMILE_COLORS.put, OFFSET.put);

  // Legend, top left.
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  let lx = PAD.left + 4;
  for (const [text, color] of [
    [labels.calls, SMILE_COLORS.call],
    [labels.puts, SMILE_COLORS.put],
  ]) {
    ctx.fillStyle = color;
    ctx.fillRect(lx, 6, 10, 3);
    ctx.fillStyle = COLORS.text;
    ctx.fillText(text, lx + 14, 8);
    lx += ctx.measureText(text).width + 30;
  }
  ctx.fillStyle = COLORS.axis;
  ctx.fillText(labels.legend, lx, 8);
}
