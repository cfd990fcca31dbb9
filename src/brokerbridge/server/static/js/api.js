// JSON over the bridge's REST API (same origin, so the session cookie goes along).

export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error.code ?? "http_error";
    this.remedy = error.remedy ?? "";
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

/** An element showing an API error with its remedy, for a page that could not load something. */
export function errorBox(error, i18n) {
  const box = document.createElement("div");
  box.className = "notice error";
  const title = document.createElement("strong");
  title.textContent = `${i18n.t("common.error")}: ${error.message}`;
  box.append(title);
  if (error.remedy) {
    const remedy = document.createElement("div");
    remedy.textContent = error.remedy;
    box.append(remedy);
  }
  return box;
}
