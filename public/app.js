// ModelBridge portal behaviour. Everything here is an enhancement: every page works without it.
// Loaded as a file (never inline) so the Content-Security-Policy can forbid inline scripts.
(function () {
  'use strict';
  document.documentElement.classList.remove('no-js');
  document.documentElement.classList.add('js');

  // A page answering a POST (a form shown again with its errors, a show-once secret) names the page the form came
  // from: put that in the address bar, so a reload is a plain GET and never sends the form again.
  var pageUrl = document.querySelector('meta[name="mb-page-url"]');
  if (pageUrl && window.history && window.history.replaceState) window.history.replaceState(null, '', pageUrl.getAttribute('content'));

  // Filters apply as soon as a value changes: <form data-filter> is submitted (htmx picks it up where it is wired);
  // its button is the no-JavaScript way and is hidden by app.css.
  document.addEventListener('change', function (event) {
    var form = event.target.closest && event.target.closest('form[data-filter]');
    if (form && form.reportValidity()) form.requestSubmit();
  });

  // Copy buttons: <button data-copy="element-id">. Falls back to selecting the text when the clipboard API is not
  // available (plain-http installations that are not localhost).
  document.addEventListener('click', function (event) {
    var button = event.target.closest('[data-copy]');
    if (!button) return;
    var source = document.getElementById(button.getAttribute('data-copy'));
    if (!source) return;
    var text = source.textContent;
    var done = function (ok) {
      var label = button.textContent;
      button.textContent = ok ? 'Copied' : 'Press Ctrl+C';
      button.setAttribute('aria-live', 'polite');
      setTimeout(function () { button.textContent = label; }, 2000);
    };
    var selectSource = function () {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { selectSource(); done(false); });
    } else {
      selectSource();
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      done(ok);
    }
  });

  // Snippet tabs: without JavaScript every snippet is listed; with it, one at a time behind a tab bar.
  function initTabs(root) {
    var groups = (root.matches && root.matches('[data-tabs]') ? [root] : []).concat(Array.prototype.slice.call(root.querySelectorAll ? root.querySelectorAll('[data-tabs]') : []));
    groups.forEach(function (group) {
      if (group.getAttribute('data-tabs-ready')) return;
      group.setAttribute('data-tabs-ready', '1');
      var panels = Array.prototype.slice.call(group.querySelectorAll('[data-tab]'));
      var bar = document.createElement('div');
      bar.className = 'tabs';
      bar.setAttribute('role', 'tablist');
      panels.forEach(function (panel, i) {
        var tab = document.createElement('button');
        tab.type = 'button';
        tab.id = panel.id + '-tab';
        tab.textContent = panel.getAttribute('data-tab');
        tab.setAttribute('role', 'tab');
        tab.setAttribute('aria-controls', panel.id);
        panel.setAttribute('role', 'tabpanel');
        panel.setAttribute('aria-labelledby', tab.id);
        var heading = panel.querySelector('h3');
        if (heading) heading.classList.add('sr-only');
        tab.addEventListener('click', function () { select(i); });
        tab.addEventListener('keydown', function (e) {
          if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
            var next = (i + (e.key === 'ArrowRight' ? 1 : panels.length - 1)) % panels.length;
            select(next);
            bar.children[next].focus();
          }
        });
        bar.appendChild(tab);
      });
      function select(index) {
        panels.forEach(function (panel, i) {
          panel.hidden = i !== index;
          bar.children[i].setAttribute('aria-selected', String(i === index));
          bar.children[i].tabIndex = i === index ? 0 : -1;
        });
      }
      group.insertBefore(bar, group.firstChild);
      select(0);
    });
  }

  document.addEventListener('DOMContentLoaded', function () { initTabs(document); });
  document.addEventListener('htmx:load', function (event) { initTabs(event.detail.elt); });

  // Escape leaves an inline edit (the row's Cancel link swaps the normal row back in).
  document.addEventListener('keydown', function (event) {
    if (event.key !== 'Escape') return;
    var row = event.target.closest && event.target.closest('tr.editing');
    var cancel = row && row.querySelector('[data-cancel]');
    if (cancel) { event.preventDefault(); cancel.click(); }
  });

  // After an htmx swap that shows a message or a new panel, move focus there so keyboard and screen-reader users
  // land on the result.
  document.addEventListener('htmx:afterSettle', function (event) {
    var target = event.detail.elt;
    var focus = target && target.querySelector && target.querySelector('[data-autofocus]');
    if (focus) focus.focus();
  });
})();
