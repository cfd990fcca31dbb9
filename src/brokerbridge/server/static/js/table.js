// A table whose headers sort it: click a header to sort by it, click again to reverse.
// The table only keeps the sort state and the header marks; the page decides what rows exist.

import { el } from "./dom.js";

const collator = new Intl.Collator("es-AR", { numeric: true, sensitivity: "base" });

export class SortableTable {
  /** `columns`: [{key, label, text?}] (`text`: sort as text, align left); `onSort()` after a click. */
  constructor(columns, sort, onSort) {
    this.columns = columns;
    this.sort = { ...sort };
    this.body = el("tbody");
    this.headers = new Map();
    const row = el("tr");
    for (const column of columns) {
      const button = el("button", { type: "button", class: "sort" }, column.label);
      const th = el("th", { scope: "col", dataset: { col: column.key }, class: column.text ? "" : "num" }, button);
      button.addEventListener("click", () => {
        this.sort = this.sort.key === column.key
          ? { key: column.key, dir: -this.sort.dir }
          : { key: column.key, dir: column.text ? 1 : -1 }; // numbers: biggest first
        this.markHeaders();
        onSort(this.sort);
      });
      this.headers.set(column.key, th);
      row.append(th);
    }
    this.table = el("table", { class: "grid" }, el("thead", {}, row), this.body);
    this.markHeaders();
  }

  markHeaders() {
    for (const [key, th] of this.headers) {
      if (key === this.sort.key) th.setAttribute("aria-sort", this.sort.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
  }

  /** Sort `items` in place by the current column; unknown values (null) always go last. */
  sortRows(items, valueOf) {
    const { key, dir } = this.sort;
    items.sort((a, b) => {
      const x = valueOf(a, key);
      const y = valueOf(b, key);
      if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
      if (y === null || y === undefined) return -1;
      const order = typeof x === "number" && typeof y === "number" ? x - y : collator.compare(String(x), String(y));
      return order * dir;
    });
    return items;
  }
}
