// The SIMULADOR / SIMULATED badge: every page that shows a venue's data puts one in its header,
// shown when /api/venues says an embedded simulator (a demo account, not a real market) stands in
// for any of those venues — so fake prices and balances are never mistaken for real ones.

import { api } from "./api.js";
import { el } from "./dom.js";

/** A badge for the page header, shown once /api/venues names one of `shown` (venue names) as simulated. */
export function simulatedBadge(i18n, shown) {
  const badge = el(
    "span",
    { class: "badge simulated", hidden: true, role: "note", dataset: { testid: "simulated" } },
    i18n.t("sim.badge"),
  );
  api("/api/venues")
    .then(({ venues }) => {
      const simulated = venues.filter((v) => v.simulated && shown.includes(v.venue)).map((v) => v.venue);
      if (!simulated.length) return;
      badge.dataset.venues = simulated.join(" ");
      badge.title = i18n.t("sim.title", { venues: simulated.join(", ") });
      badge.hidden = false;
    })
    .catch(() => {}); // the page reports its own load errors; unknown is shown as no badge
  return badge;
}
