// Completes a password reset: the single-use secret comes in the link's fragment
// (#secret=...), which the browser never sends to a server.
const $ = (id) => document.getElementById(id);
const secret = new URLSearchParams(location.hash.slice(1)).get("secret") || "";
// Keep the secret out of the address bar and the history once read.
history.replaceState(null, "", location.pathname);

if (!secret) {
  $("reset-error").textContent = "This link has no reset secret: use the link from the mail as it is.";
  $("reset-form").querySelector("button").disabled = true;
}

$("reset-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  if (f.get("password") !== f.get("again")) {
    $("reset-error").textContent = "The two passwords differ.";
    return;
  }
  const r = await fetch("/api/management/v1/useradm/auth/password-reset/complete", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ secret, password: f.get("password") }),
  });
  if (r.status === 202) {
    $("reset-form").hidden = true;
    $("reset-done").hidden = false;
    return;
  }
  const body = await r.json().catch(() => ({}));
  $("reset-error").textContent = body.error || `the password was not set (${r.status})`;
});
