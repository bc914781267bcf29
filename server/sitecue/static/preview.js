// sitecue's preview panel. The tag loads it only when /v1/decide answered a preview link
// (?sc_preview=…), handing over that answer as the script element's `p`; ordinary page
// views never fetch it. It lists every rule's verdict for this page view, with the reasons
// of the decision log, in a shadow root (the page's styles neither reach in nor out).
// Everything it shows is set as text, never as HTML.
(function (script) {
  var answer = script && script.p;
  if (!answer || !answer.preview) return;
  var preview = answer.preview;
  var old = document.getElementById('sitecue-preview');
  if (old) old.remove();

  var host = document.createElement('div');
  host.id = 'sitecue-preview';
  host.setAttribute('data-rule', preview.rule);
  host.setAttribute('data-variant', preview.variant);
  var root = host.attachShadow({ mode: 'open' });
  var css =
    ':host{all:initial}' +
    '.p{position:fixed;left:12px;bottom:12px;z-index:2147483647;max-width:420px;max-height:50vh;' +
    'overflow:auto;background:#111;color:#eee;font:12px/1.4 system-ui,sans-serif;padding:10px 12px;' +
    'border-radius:6px;box-shadow:0 2px 12px rgba(0,0,0,.4)}' +
    'h2{font-size:13px;margin:0 0 4px}p{margin:0 0 6px;color:#bbb}table{border-collapse:collapse}' +
    'td{padding:2px 8px 2px 0;vertical-align:top}.y{color:#7ddc8a}.n{color:#f0a35e}' +
    'button{float:right;background:none;border:0;color:#eee;font-size:14px;cursor:pointer}';
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(css); // a constructed sheet: allowed by a strict Content-Security-Policy
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    var style = document.createElement('style');
    style.textContent = css;
    root.appendChild(style);
  }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  var panel = el('div', '', 'p');
  panel.setAttribute('role', 'status');
  var close = el('button', '\u00d7');
  close.setAttribute('aria-label', 'Close the preview panel');
  close.onclick = function () {
    host.remove();
  };
  panel.appendChild(close);
  panel.appendChild(el('h2', 'sitecue preview: ' + preview.rule + ' / ' + preview.variant));
  panel.appendChild(
    el('p', 'Shown whatever its schedule, caps and conditions say; not counted. Link valid until ' +
      new Date(preview.expires).toLocaleString() + '.')
  );
  var table = el('table');
  preview.verdicts.forEach(function (v) {
    var row = el('tr');
    row.setAttribute('data-rule', v.rule);
    row.appendChild(el('td', (v.rule === preview.rule ? '\u25b6 ' : '') + v.rule));
    row.appendChild(
      el('td', v.matched ? 'would show (' + v.variant + ')' : v.reason || 'not shown', v.matched ? 'y' : 'n')
    );
    table.appendChild(row);
  });
  panel.appendChild(table);
  root.appendChild(panel);
  document.body.appendChild(host);
})(document.currentScript);
