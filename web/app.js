// Minimal sign-in page: logs in through the Mender useradm API and shows the current user.
const api = "/api/management/v1/useradm";
const $ = (id) => document.getElementById(id);

async function showMe(token) {
  const r = await fetch(`${api}/users/me`, { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) { sessionStorage.removeItem("token"); return false; }
  const me = await r.json();
  $("me-email").textContent = me.email;
  $("me-roles").textContent = (me.roles || []).join(", ");
  $("login").hidden = true;
  $("account").hidden = false;
  return true;
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const basic = btoa(`${f.get("email")}:${f.get("password")}`);
  const code = (f.get("token2fa") || "").trim();
  const r = await fetch(`${api}/auth/login`, {
    method: "POST",
    headers: { Authorization: `Basic ${basic}`, "Content-Type": "application/json" },
    body: code ? JSON.stringify({ token2fa: code }) : "",
  });
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    $("login-error").textContent = body.error || `login failed (${r.status})`;
    return;
  }
  const token = await r.text();
  sessionStorage.setItem("token", token);
  await showMe(token);
});

$("logout").addEventListener("click", async () => {
  const token = sessionStorage.getItem("token");
  await fetch(`${api}/auth/logout`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
  sessionStorage.removeItem("token");
  $("account").hidden = true;
  $("login").hidden = false;
});

const saved = sessionStorage.getItem("token");
if (saved) showMe(saved);
