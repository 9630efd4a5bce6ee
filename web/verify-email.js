// Follows an email verification link: the single-use secret comes in the link's fragment
// (#secret=...), which the browser never sends to a server.
const $ = (id) => document.getElementById(id);
const secret = new URLSearchParams(location.hash.slice(1)).get("secret") || "";
history.replaceState(null, "", location.pathname);

async function confirm() {
  if (!secret) {
    return "This link has no secret: use the link from the mail as it is.";
  }
  const r = await fetch("/api/management/v1/useradm/auth/verify-email/complete", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ secret }),
  });
  if (r.status === 204) {
    return null;
  }
  const body = await r.json().catch(() => ({}));
  return body.error || `the address was not confirmed (${r.status})`;
}

confirm().then((error) => {
  $("verify-wait").hidden = true;
  if (error) {
    $("verify-error").textContent = error;
  } else {
    $("verify-done").hidden = false;
  }
});
