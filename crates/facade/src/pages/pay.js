// The payment pages' only script (served from /pay/static/pay.js): the pages work without it.
// It groups the card number as typed, names the scheme by BIN, checks fields as they are left,
// and sends the CVC-only form without reloading the page. It never stores, logs or sends card
// data anywhere but the form's own action.
(function () {
  "use strict";
  function digits(s) { return s.replace(/\D/g, ""); }
  function brand(d) {
    var n6 = parseInt((d + "000000").slice(0, 6), 10);
    if (d.charAt(0) === "4") return "VISA";
    if (n6 >= 220000 && n6 < 220500) return "МИР";
    if ((n6 >= 510000 && n6 < 560000) || (n6 >= 222100 && n6 < 272100)) return "Mastercard";
    return "";
  }
  function luhn(d) {
    var sum = 0;
    for (var i = 0; i < d.length; i++) {
      var x = +d.charAt(d.length - 1 - i);
      if (i % 2 === 1) { x *= 2; if (x > 9) x -= 9; }
      sum += x;
    }
    return sum % 10 === 0;
  }
  function show(form, name, message) {
    var out = form.querySelector('.error[data-for="' + name + '"]');
    var input = form.querySelector('[name="' + name + '"]');
    if (out) out.textContent = message || "";
    if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
    return !message;
  }
  function checkPan(form) {
    var d = digits(form.elements.pan.value);
    if (d.length < 12 || d.length > 19) return show(form, "pan", form.dataset.errPanLength);
    if (!luhn(d)) return show(form, "pan", form.dataset.errPanLuhn);
    return show(form, "pan", "");
  }
  function checkExpiry(form) {
    var m = digits(form.elements.exp_month.value), y = digits(form.elements.exp_year.value);
    if (!m || !y || +m < 1 || +m > 12 || (y.length !== 2 && y.length !== 4)) {
      return show(form, "exp_month", form.dataset.errExpiry);
    }
    var year = y.length === 2 ? 2000 + +y : +y, now = new Date();
    if (year < now.getFullYear() || (year === now.getFullYear() && +m < now.getMonth() + 1)) {
      return show(form, "exp_month", form.dataset.errExpired);
    }
    return show(form, "exp_month", "");
  }
  function checkCvc(form) {
    var c = form.elements.cvc.value;
    return show(form, "cvc", /^\d{3,4}$/.test(c) ? "" : form.dataset.errCvc);
  }

  var card = document.getElementById("card-form");
  if (card) {
    var pan = card.elements.pan, label = document.getElementById("brand");
    pan.addEventListener("input", function () {
      var d = digits(pan.value).slice(0, 19);
      var grouped = d.replace(/(\d{4})(?=\d)/g, "$1 ");
      if (grouped !== pan.value) pan.value = grouped;
      if (label) label.textContent = brand(d);
    });
    pan.addEventListener("blur", function () { if (pan.value) checkPan(card); });
    card.elements.exp_year.addEventListener("blur", function () { checkExpiry(card); });
    card.elements.cvc.addEventListener("blur", function () { if (card.elements.cvc.value) checkCvc(card); });
    card.addEventListener("submit", function (e) {
      var ok = [checkPan(card), checkExpiry(card), checkCvc(card)].every(Boolean);
      if (!ok) { e.preventDefault(); return; }
      card.querySelector("button[type=submit]").disabled = true;
    });
  }

  var cvcForm = document.getElementById("cvc-form");
  if (cvcForm && window.fetch) {
    cvcForm.addEventListener("submit", function (e) {
      e.preventDefault();
      if (!checkCvc(cvcForm)) return;
      var button = cvcForm.querySelector("button[type=submit]");
      button.disabled = true;
      fetch(cvcForm.action, {
        method: "POST",
        headers: { "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(cvcForm)).toString(),
        credentials: "same-origin",
        redirect: "error"
      }).then(function (r) { return r.json(); }).then(function (answer) {
        if (answer.location) { window.location.assign(answer.location); return; }
        button.disabled = false;
        show(cvcForm, "cvc", answer.error || "");
      }).catch(function () { button.disabled = false; cvcForm.submit(); });
    });
  }
})();
