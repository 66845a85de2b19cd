// Polls the order's status at most 10 times while the payment is unconfirmed, then says that
// the order awaits confirmation and an e-mail will follow. No inline script: the page works
// under a strict CSP. An answer that is not a status (the session not recorded yet, a network
// error) counts as a try and changes nothing on the page.
(function () {
  var el = document.getElementById("order");
  if (!el || el.dataset.state !== "pending") return;
  var msg = document.getElementById("message");
  var tries = 0;
  function next() {
    if (tries >= 10) { msg.textContent = el.dataset.finalMessage; return; }
    setTimeout(poll, 2000);
  }
  function poll() {
    tries += 1;
    fetch(el.dataset.statusUrl, { headers: { accept: "application/json" }, credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (s && typeof s.state === "string" && typeof s.message === "string") {
          msg.textContent = s.message;
          msg.className = "state state-" + s.state;
          if (s.state !== "pending") return;
        }
        next();
      })
      .catch(next);
  }
  setTimeout(poll, 2000);
})();
