// Small DOM helpers: build elements, and write text only when it changed (cheap repeated renders).

/** `el("td", {class: "num", dataset: {col: "last"}}, "text", child)` */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** Set `node.textContent` unless it already holds `text` (avoids layout work for unchanged cells). */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** Set `node.className` unless unchanged. */
export function setClass(node, name) {
  if (node.className !== name) node.className = name;
}

/** A segmented control: buttons with `aria-pressed`; `onChange(value)` on click. */
export function segmented(options, current, onChange, label) {
  const group = el("div", { class: "segmented", role: "group", "aria-label": label });
  const buttons = options.map(([value, text]) =>
    el("button", { type: "button", dataset: { value }, "aria-pressed": String(value === current) }, text),
  );
  group.append(...buttons);
  group.addEventListener("click", (e) => {
    const button = e.target.closest("button");
    if (!button) return;
    for (const b of buttons) b.setAttribute("aria-pressed", String(b === button));
    onChange(button.dataset.value);
  });
  return group;
}

/**
 * Restart a CSS flash on `node` without forcing a reflow: alternate between two classes whose
 * animations are identical, so changing the class restarts the animation.
 */
export function flash(node, tone) {
  const next = node.dataset.flash === "a" ? "b" : "a";
  node.dataset.flash = next;
  node.dataset.tone = tone;
}
