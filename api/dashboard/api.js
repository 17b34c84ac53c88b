// The dashboard's session and its calls to the City Eyes API. The access token and the
// refresh token live in sessionStorage: they go when the tab is closed, and no other site
// can read them.

const KEY = "cityeyes.session";

export class SignedOut extends Error {}

export class Problem extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY)) || null;
  } catch {
    return null;
  }
}

function keep(s) {
  sessionStorage.setItem(KEY, JSON.stringify(s));
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

async function readBody(resp) {
  const text = await resp.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function signIn(email, password) {
  const resp = await fetch("/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  const body = await readBody(resp);
  if (!resp.ok) throw new Problem(resp.status, body);
  const s = {
    token: body.token,
    refresh: body.refresh_token,
    role: body.role,
    department: body.department,
    jurisdiction: body.jurisdiction,
    email,
  };
  keep(s);
  return s;
}

// One refresh at a time: several calls failing with 401 together share it (a refresh
// token is good once).
let refreshing = null;

async function refresh() {
  const s = session();
  if (!s || !s.refresh) throw new SignedOut();
  if (!refreshing) {
    refreshing = (async () => {
      const resp = await fetch("/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: s.refresh }),
      });
      const body = await readBody(resp);
      if (!resp.ok) {
        signOut();
        throw new SignedOut();
      }
      keep({ ...s, token: body.token, refresh: body.refresh_token, role: body.role, department: body.department });
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// get fetches a JSON answer of the API with the session's token, refreshing the token once
// when it has expired.
export function get(path) {
  return send("GET", path);
}

// send calls the API with the session's token and a JSON body (or none), refreshing the
// token once when it has expired. A refused call throws a Problem whose message is the
// problem's detail.
export async function send(method, path, body, retried = false) {
  const s = session();
  if (!s) throw new SignedOut();
  const headers = { Authorization: `Bearer ${s.token}`, Accept: "application/json" };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (resp.status === 401 && !retried) {
    await refresh();
    return send(method, path, body, true);
  }
  if (resp.status === 401) {
    signOut();
    throw new SignedOut();
  }
  const out = await readBody(resp);
  if (!resp.ok) throw new Problem(resp.status, out);
  return out;
}
