// Polls the order's status at most 10 times while the payment is unconfirmed, then says that
// an e-mail will follow. No inline script: the page works under a strict CSP.
(function () {
  var el = document.getElementById("order");
  if (!el || el.dataset.state !== "pending") return;
  var tries = 0;
  function poll() {
    tries += 1;
    fetch(el.dataset.statusUrl, { headers: { accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        var msg = document.getElementById("message");
        msg.textContent = s.message;
        msg.className = "state state-" + s.state;
        if (s.state !== "pending") return;
        if (tries >= 10) { msg.textContent = el.dataset.finalMessage; return; }
        setTimeout(poll, 2000);
      })
      .catch(function () { if (tries < 10) setTimeout(poll, 2000); });
  }
  setTimeout(poll, 2000);
})();
