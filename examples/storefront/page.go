package main

// pageHTML is the storefront's only page. Element ids are what the tests and
// the browser test look for.
//
// Two of its controls talk to the edge, not to the app: the currency switch
// and the device list are a few lines of script calling the edge's
// self-service endpoints under /.session/ (PATCH context, GET sessions,
// DELETE sessions/others), which the edge answers for the shopper's own
// session and refuses from other sites.
const pageHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sessionedge storefront</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 14px 24px; display: flex; justify-content: space-between; align-items: center; }
  header h1 { font-size: 20px; margin: 0; }
  header .who { font-size: 14px; }
  main { display: grid; grid-template-columns: 2fr 1fr; gap: 20px; padding: 20px 24px; max-width: 1100px; }
  section { background: #fff; border-radius: 8px; padding: 16px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
  h2 { font-size: 16px; margin: 0 0 12px; }
  .products { display: grid; grid-template-columns: repeat(2, 1fr); gap: 12px; }
  .product { border: 1px solid #e3e6eb; border-radius: 6px; padding: 12px; }
  .product .price { font-weight: 600; margin: 6px 0 10px; }
  button { background: #2f6fed; color: #fff; border: 0; border-radius: 5px; padding: 6px 12px; cursor: pointer; }
  button.secondary { background: #5a6272; }
  table { width: 100%; border-collapse: collapse; font-size: 14px; }
  td { padding: 4px 0; }
  td.num { text-align: right; }
  .flash { background: #e8f5e9; border: 1px solid #b5dfb8; padding: 8px 24px; margin: 0; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; font-size: 13px; margin: 0; }
  dt { color: #5a6272; }
  dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
  form.inline { display: flex; gap: 6px; margin: 8px 0; }
  input, select { padding: 5px; border: 1px solid #c8ccd4; border-radius: 4px; }
  .error { color: #b3261e; font-size: 13px; }
  ul.devices { list-style: none; padding: 0; margin: 0 0 8px; font-size: 13px; }
  ul.devices li { padding: 4px 0; border-bottom: 1px solid #eef0f3; }
  ul.devices .this { font-weight: 600; }
</style>
</head>
<body>
<header>
  <h1>sessionedge storefront</h1>
  <div class="who" id="who">{{if .S.Customer}}Logged in as <b id="customer">{{.S.Customer}}</b>{{else}}Browsing anonymously{{end}}</div>
</header>
{{if .Flash}}<p class="flash" id="flash">{{.Flash}}</p>{{end}}
<main>
  <div>
    <section>
      <h2>Products <small>(prices in <span id="currency">{{.S.Currency}}</span>)</small></h2>
      <div class="products">
      {{range .Products}}
        <div class="product" id="product-{{.SKU}}">
          <div>{{.Name}}</div>
          <div class="price">{{.Price}}</div>
          <form method="post" action="/cart"><input type="hidden" name="sku" value="{{.SKU}}"><button id="add-{{.SKU}}">Add to cart</button></form>
        </div>
      {{end}}
      </div>
    </section>
    <section style="margin-top:20px">
      <h2>Cart {{if .S.CartID}}<small id="cart-id">{{.S.CartID}}</small>{{end}}</h2>
      {{if .Lines}}
      <table id="cart">
        {{range .Lines}}<tr><td>{{.Name}}</td><td class="num">× {{.Qty}}</td><td class="num">{{.Price}}</td></tr>{{end}}
        <tr><td><b>Total</b></td><td></td><td class="num"><b id="total">{{.Total}}</b></td></tr>
      </table>
      {{else}}<p id="cart-empty">Your cart is empty.</p>{{end}}
    </section>
  </div>
  <div>
    <section>
      <h2>Currency</h2>
      <form class="inline" id="currency-form">
        <select name="currency" id="currency-select">{{range .Currencies}}<option{{if eq . $.S.Currency}} selected{{end}}>{{.}}</option>{{end}}</select>
        <button id="set-currency">Switch</button>
      </form>
      <p class="error" id="currency-error" hidden></p>
    </section>
    <section style="margin-top:20px">
      <h2>Account</h2>
      {{if .S.Customer}}
        <form class="inline" method="post" action="/privacy">
          <input name="email" id="email" placeholder="email for order updates" value="{{.S.Email}}">
          <button id="set-email">Save</button>
        </form>
        {{if .S.Email}}<p style="font-size:13px">Order updates go to <b id="privacy-email">{{.S.Email}}</b> (privacy: forgotten at logout).</p>{{end}}
        <form method="post" action="/logout"><button class="secondary" id="logout">Log out</button></form>
        <h2 style="margin-top:16px">Your devices</h2>
        <ul class="devices" id="devices"><li>loading…</li></ul>
        <button class="secondary" id="logout-others">Log out other devices</button>
        <p class="error" id="devices-error" hidden></p>
      {{else}}
        <form class="inline" method="post" action="/login">
          <select name="customer" id="customer-select">{{range .Customers}}<option>{{.}}</option>{{end}}</select>
          <button id="login">Log in</button>
        </form>
        <p style="font-size:13px">Demo customers: their profiles set currency and locale at login.</p>
      {{end}}
    </section>
    <section style="margin-top:20px">
      <h2>Session</h2>
      <dl id="session">
        <dt>id</dt><dd id="session-id">{{.S.ID}}</dd>
        <dt>kind</dt><dd id="session-kind">{{.S.Kind}}</dd>
        <dt>generation</dt><dd id="session-generation">{{.S.Generation}}</dd>
        <dt>version</dt><dd id="session-version">{{.S.Version}}</dd>
        <dt>site</dt><dd>{{.S.Site}}</dd>
        <dt>locale</dt><dd id="session-locale">{{.S.Locale}}</dd>
        <dt>location</dt><dd>{{.S.Location}}</dd>
        <dt>source</dt><dd id="session-status">{{.S.Status}}</dd>
        {{if .S.Campaign}}<dt>campaign</dt><dd id="session-campaign">{{.S.Campaign}}</dd>{{end}}
        {{if .S.Tracking}}<dt>tracking</dt><dd id="session-tracking">{{.S.Tracking}}</dd>{{end}}
      </dl>
    </section>
  </div>
</main>
<script>
// The shopper's own endpoints at the edge: they act on this browser's
// session (its cookie) and answer JSON.
async function selfService(method, path, body) {
  const init = {method: method, credentials: "same-origin", headers: {}};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch("/.session/" + path, init);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = data.error || {};
    throw new Error((e.field ? e.field + ": " : "") + (e.message || ("status " + r.status)));
  }
  return data;
}
function showError(id, err) {
  const p = document.getElementById(id);
  p.textContent = String(err.message || err);
  p.hidden = false;
}
function reload(msg) { location.assign("/?msg=" + encodeURIComponent(msg)); }

// Currency: the edge checks it against the currencies of the site and
// writes it into the session; the page after shows prices in it.
document.getElementById("currency-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const code = document.getElementById("currency-select").value;
  try {
    await selfService("PATCH", "context", {currency: code});
    reload("Prices now in " + code);
  } catch (err) {
    showError("currency-error", err);
  }
});

// Devices: the customer's sessions, this one marked; the others can be
// logged out.
const devices = document.getElementById("devices");
if (devices) {
  selfService("GET", "sessions").then((list) => {
    devices.textContent = "";
    for (const s of list.sessions || []) {
      const li = document.createElement("li");
      const d = s.device || s.firstDevice || {};
      li.className = "device" + (s.current ? " this" : "");
      li.dataset.handle = s.handle;
      li.textContent = (s.current ? "This device: " : "") + (d.userAgent || "unknown browser") +
        (d.addr ? " from " + d.addr : "") + (d.site ? ", site " + d.site : "") +
        (s.lastSeen ? ", last seen " + new Date(s.lastSeen).toLocaleString() : "");
      devices.appendChild(li);
    }
  }).catch((err) => showError("devices-error", err));
  document.getElementById("logout-others").addEventListener("click", async () => {
    try {
      const res = await selfService("DELETE", "sessions/others");
      reload("Logged out " + res.revoked + " other device" + (res.revoked === 1 ? "" : "s"));
    } catch (err) {
      showError("devices-error", err);
    }
  });
}
</script>
</body>
</html>
`
